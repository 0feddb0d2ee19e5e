/* Mirsad's web page: the live feed's "N new" badge, and no row shown twice. No other script runs (CSP). */
"use strict";
(function () {
  var TOP = 150; // px: a reader scrolled further down than this is told how many arrived above

  function badge() { return document.getElementById("new-badge"); }

  function reset() {
    var b = badge();
    if (b) { b.hidden = true; b.dataset.count = "0"; }
  }

  // The server sends a row again after a reconnect: keep the one on the page.
  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    var id = event.detail && event.detail.lastEventId;
    if (id && document.getElementById("item-" + id)) { event.preventDefault(); }
  });

  document.addEventListener("htmx:sseMessage", function () {
    var empty = document.getElementById("feed-empty");
    if (empty) { empty.remove(); }
    var b = badge();
    if (!b || window.scrollY <= TOP) { return; }
    var count = parseInt(b.dataset.count || "0", 10) + 1;
    b.dataset.count = String(count);
    b.textContent = count + " new";
    b.hidden = false;
  });

  window.addEventListener("scroll", function () { if (window.scrollY <= TOP) { reset(); } }, { passive: true });

  document.addEventListener("click", function (event) {
    if (event.target && event.target.id === "new-badge") {
      event.preventDefault();
      window.scrollTo({ top: 0, behavior: "smooth" });
      reset();
    }
  });
})();
