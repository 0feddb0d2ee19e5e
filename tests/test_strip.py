"""strip: markers and layout remove boilerplate, keep the body, record every removal and fill metadata."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from workers.core.document import Document, RemovedLine
from workers.core.settings import get_settings
from workers.stages.strip import default_markers, load_markers, strip

FIXTURES = Path(__file__).parent / "fixtures" / "strip"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def rules_of(doc: Document) -> dict[str, str]:
    return {removed.line: removed.rule for removed in doc.removed}


def body_lines(doc: Document) -> list[str]:
    return [line for line in doc.text.split("\n") if line]


def assert_accounted_for(original: str, doc: Document) -> None:
    """Every non-blank input line is either kept or recorded as removed, and nothing is invented."""
    inputs = [line.strip() for line in original.split("\n") if line.strip()]
    kept = body_lines(doc)
    removed = [r.line for r in doc.removed if r.rule != "headline" or r.line in inputs]
    assert sorted(kept + removed) == sorted(inputs)
    assert all(r.rule for r in doc.removed)


# --- the fixture pages: article + residue, in each language ---------------------------------------


def test_copyright_notice_ends_the_article_and_takes_the_teasers_after_it():
    original = fixture_text("ar_copyright_teasers.txt")
    doc = strip(Document(text=original))

    rules = rules_of(doc)
    notice = next(line for line in rules if "جميع الحقوق محفوظة" in line)
    assert rules[notice] == "marker:copyright-notice"
    teasers = [line for line, rule in rules.items() if rule == "block:copyright-notice"]
    assert len(teasers) == 3 and any("مصرف ليبيا المركزي" in line for line in teasers)
    assert len(body_lines(doc)) == 4
    assert body_lines(doc)[-1].endswith("(وكالة الرصد)")
    assert doc.title == "وفد عسكري ليبي يختتم زيارة إلى إسطنبول لبحث برامج التدريب البحري"
    assert doc.credit == "وكالة الرصد"
    assert_accounted_for(original, doc)


def test_site_name_and_share_prompt_go_while_subheading_and_marker_words_in_body_stay():
    original = fixture_text("ar_sitename_share.txt")
    doc = strip(Document(text=original))

    assert rules_of(doc) == {"المرصد العربي": "site-name", "هل أعجبك الخبر؟ شاركه مع اصدقائك!": "marker:share-prompt"}
    assert doc.title is None
    assert doc.site_name == "المرصد العربي", "the site-name line names the site when the page did not"
    assert "خطوات عملية" in body_lines(doc)
    assert any("قسم التعليقات" in line for line in body_lines(doc))
    assert "\n\n" in doc.text, "paragraph breaks are kept"
    assert_accounted_for(original, doc)


def test_section_name_comment_form_and_author_box_go_and_fill_the_author():
    original = fixture_text("ar_section_comments_bio.txt")
    doc = strip(Document(text=original))

    assert rules_of(doc) == {
        "انطلاق مناورات بحرية مشتركة قبالة سواحل مصراتة": "leading-teaser",
        "أخبار الدفاع": "section-name",
        "تركيا تسلم ليبيا دفعة جديدة من الزوارق السريعة": "headline",
        "سالم الورفلي": "byline",
        "صحفي متخصص في الشؤون العسكرية": "author-bio",
        "أضف تعليقاً": "marker:comment-form",
        "لن يتم نشر عنوان بريدك الالكتروني. الحقول الإلزامية مشار إليها بـ *": "marker:comment-policy",
    }
    assert doc.title == "تركيا تسلم ليبيا دفعة جديدة من الزوارق السريعة"
    assert doc.author == "سالم الورفلي"
    assert len(body_lines(doc)) == 3
    assert_accounted_for(original, doc)


def test_dateline_source_tags_and_read_also_block_fill_metadata_and_go():
    original = fixture_text("ar_dateline_tags_readalso.txt")
    doc = strip(Document(text=original))

    rules = rules_of(doc)
    assert rules["تاريخ النشر: 12 مارس 2024"] == "marker:dateline"
    assert rules["المصدر: وكالة الأنباء الليبية"] == "marker:source-credit"
    assert rules["اقرا ايضا"] == "marker:read-also"
    assert sum(rule == "block:read-also" for rule in rules.values()) == 4
    assert doc.published_at == "2024-03-12"
    assert doc.credit == "وكالة الأنباء الليبية"
    assert doc.keywords == ["ليبيا", "تركيا", "القوات الجوية", "الصناعات الدفاعية"]
    assert doc.title == "ليبيا وتركيا تبحثان إنشاء مركز مشترك لصيانة الطائرات"
    assert len(body_lines(doc)) == 3
    assert_accounted_for(original, doc)


def test_turkish_agency_notice_tag_list_and_related_block():
    original = fixture_text("tr_agency_tags_related.txt")
    doc = strip(Document(text=original))

    rules = rules_of(doc)
    assert rules["Yayınlanma: 05.02.2024 14:30"] == "marker:dateline"
    assert any(rule == "marker:copyright-notice" and "Haber Akış Sistemi" in line for line, rule in rules.items())
    assert rules["Etiketler :"] == "marker:tags"
    assert rules["İLGİLİ HABERLER"] == "marker:related"
    assert rules["Bakan Güler Trablus'ta temaslarda bulundu"] == "block:related"
    assert doc.keywords == ["Libya", "Savunma", "Askeri eğitim"]
    assert doc.published_at == "2024-02-05"
    assert doc.credit == "AA"
    assert body_lines(doc)[0].startswith("ANKARA (AA) -")
    assert len(body_lines(doc)) == 3
    assert_accounted_for(original, doc)


def test_english_related_box_inside_the_article_takes_only_its_links():
    original = fixture_text("en_byline_related_inline.txt")
    doc = strip(Document(text=original))

    rules = rules_of(doc)
    assert rules["By Jane Doe"] == "marker:byline-by"
    assert rules["Read more: Turkish shipyard delivers patrol boats to Tripoli"] == "marker:read-also"
    assert rules["Related"] == "marker:related"
    assert rules["Turkey, Libya sign maritime memorandum"] == "block:related"
    assert rules["(Reporting by John Roe; Editing by Mark Poe)"] == "marker:reporting-credit"
    assert rules["Floods disrupt traffic in Tripoli"] == "block:related"
    assert rules["© 2024 Example News. All rights reserved."] == "marker:copyright-notice"
    body = body_lines(doc)
    assert len(body) == 6
    assert any(line.startswith("Officials said the related maintenance") for line in body)
    assert body[-1].startswith("Critics in the eastern-based parliament")
    assert (doc.author, doc.published_at, doc.keywords) == ("Jane Doe", "2024-03-03", ["Libya", "Turkey", "Defence"])
    assert_accounted_for(original, doc)


# --- one marker line, many spellings -------------------------------------------------------------

ARTICLE = [
    "The defence ministers of both countries met in Ankara on Monday to review the training programme.",
    "They agreed to add two naval courses next year and to send more instructors to Tripoli.",
    "A joint committee will report on progress every three months, the ministry said in a statement.",
]


def removed_rule(line: str) -> str | None:
    """The rule that removes ``line`` when it follows a three-paragraph article."""
    doc = strip(Document(text="\n\n".join([*ARTICLE, line]), title="Ministers meet"))
    return rules_of(doc).get(line)


@pytest.mark.parametrize(
    "line, rule",
    [
        ("إقرأ أيضاً:", "marker:read-also"),
        ("اقرأ ايضا", "marker:read-also"),
        ("اقرا أيضًا :", "marker:read-also"),
        ("إقـرأ أيضـاً", "marker:read-also"),
        ("Also read", "marker:read-also"),
        ("İlgili Haberler", "marker:related"),
        ("ILGILI HABERLER", "marker:related"),
        ("ilgili haberler", "marker:related"),
        ("Bunlar da ilginizi çekebilir", "marker:related"),
        ("BUNLAR DA İLGİNİZİ ÇEKEBİLİR", "marker:related"),
        ("مواضيع ذات صلة", "marker:related"),
        ("كَلِمَاتٌ دَلَالِيَّة: ليبيا، تركيا", "marker:tags"),
        ("Etiketler: Libya, Türkiye", "marker:tags"),
        ("Tags: Libya, Turkey", "marker:tags"),
        ("المصدر : الجزيرة + وكالات", "marker:source-credit"),
        ("Kaynak: AA", "marker:source-credit"),
        ("Source: Reuters", "marker:source-credit"),
        ("تاريخ النشر: ٢٠٢٤-٠٣-٠١", "marker:dateline"),
        ("Published: 1 March 2024", "marker:dateline"),
        ("آخر تحديث: 2024-03-01", "marker:updated-line"),
        ("هل أعجبك المقال؟ شاركه مع أصدقائك", "marker:share-prompt"),
        ("Facebook Twitter WhatsApp E-mail", "marker:share-buttons"),
        ("Share this:", "marker:share-heading"),
        ("Leave a Reply", "marker:comment-form"),
        ("اترك تعليقا", "marker:comment-form"),
        ("E-posta adresiniz yayınlanmayacak.", "marker:comment-policy"),
        ("جميع الحقوق محفوظة © 2024", "marker:copyright-notice"),
        ("Tüm hakları saklıdır.", "marker:copyright-notice"),
        ("© Reuters", "marker:copyright-symbol"),
        ("Copyright 2024 Example Media", "marker:copyright-line"),
        ("Bizi sosyal medyada takip edin", "marker:subscription-prompt"),
        ("تابعونا على تيليجرام", "marker:subscription-prompt"),
    ],
)
def test_marker_lines_in_any_spelling_meet_their_rule(line, rule):
    assert removed_rule(line) == rule


@pytest.mark.parametrize(
    "line",
    [
        "Officials said the related training would start soon, and share costs equally.",
        "The comments section of the ministry's website was closed after the announcement.",
        "Tags on the crates showed they came from a shipyard in Istanbul.",
        "The court ruled on a copyright dispute between the two shipyards.",
        "By 2026 the programme should train about 1,500 Libyan officers.",
        "وقال المصدر إن المباحثات تناولت اقرأ أيضا ملفات أخرى تتعلق بالتعاون البحري والتدريب.",
        "Kaynak bakanlık, görüşmelerin olumlu geçtiğini söyledi ve yeni adımların atılacağını belirtti.",
    ],
)
def test_a_body_sentence_holding_a_marker_word_stays(line):
    doc = strip(Document(text="\n\n".join([ARTICLE[0], line, *ARTICLE[1:]]), title="Ministers meet"))
    assert line in body_lines(doc)
    assert doc.removed == []


# --- block starters: cut the tail, never the article ----------------------------------------------

LONG_PARAGRAPHS = [
    f"Paragraph {n}: the two delegations discussed training schedules, maintenance contracts and the "
    f"number of officers who will attend courses at military academies in Turkey this year."
    for n in range(1, 7)
]


def test_read_also_heading_early_in_the_article_only_takes_its_link_list():
    text = "\n".join(
        [
            *LONG_PARAGRAPHS[:2],
            "Read also",
            "Turkey opens new naval base",
            "Libya's coast guard gets new boats",
            *LONG_PARAGRAPHS[2:],
        ]
    )
    doc = strip(Document(text=text, title="Talks"))
    assert body_lines(doc) == LONG_PARAGRAPHS
    assert rules_of(doc) == {
        "Read also": "marker:read-also",
        "Turkey opens new naval base": "block:read-also",
        "Libya's coast guard gets new boats": "block:read-also",
    }


def test_read_also_heading_after_most_of_the_article_cuts_the_rest():
    other_story = "The central bank said on Tuesday that foreign currency reserves rose in the last quarter."
    text = "\n".join([*LONG_PARAGRAPHS, "Read also", "Central bank reports higher reserves", other_story])
    doc = strip(Document(text=text, title="Talks"))
    assert body_lines(doc) == LONG_PARAGRAPHS
    assert rules_of(doc)[other_story] == "block:read-also"


def test_inline_read_more_link_late_in_the_article_goes_alone():
    text = "\n".join([*LONG_PARAGRAPHS[:5], "Read more: Central bank reports higher reserves", LONG_PARAGRAPHS[5]])
    doc = strip(Document(text=text, title="Talks"))
    assert body_lines(doc) == LONG_PARAGRAPHS


def test_list_at_the_end_of_an_article_is_not_taken_for_teasers():
    bullets = ["- two naval courses", "- one air force course", "- maintenance training"]
    text = "\n".join([*LONG_PARAGRAPHS[:3], "The programme for next year includes:", *bullets])
    doc = strip(Document(text=text, title="Talks"))
    assert body_lines(doc)[-3:] == bullets
    assert doc.removed == []


def test_long_run_of_short_lines_at_the_end_is_a_schedule_not_teasers():
    schedule = [f"June {day} – Training course at the naval academy in Istanbul" for day in range(1, 9)]
    doc = strip(Document(text="\n".join([*LONG_PARAGRAPHS[:3], *schedule]), title="Talks"))
    assert body_lines(doc)[-8:] == schedule


def test_short_teasers_after_the_last_paragraph_go():
    teasers = ["Libya's central bank reports higher reserves", "Floods disrupt traffic in Tripoli?"]
    doc = strip(Document(text="\n".join([*LONG_PARAGRAPHS[:3], *teasers]), title="Talks"))
    assert body_lines(doc) == LONG_PARAGRAPHS[:3]
    assert set(rules_of(doc).values()) == {"trailing-teaser"}


def test_bullets_before_the_first_paragraph_are_body_not_fragments():
    bullets = ["- two courses", "- new boats"]
    text = "\n".join(["Turkey and Libya extend training deal", "Key points:", *bullets, *LONG_PARAGRAPHS[:3]])
    doc = strip(Document(text=text))
    assert doc.title == "Turkey and Libya extend training deal"
    assert body_lines(doc) == ["Key points:", *bullets, *LONG_PARAGRAPHS[:3]]


# --- headline -------------------------------------------------------------------------------------


def test_text_mode_headline_moves_into_the_title_after_site_residue():
    text = "\n".join(["in", "", "Turkey and Libya sign a new training deal", "", *LONG_PARAGRAPHS[:3]])
    doc = strip(Document(text=text))
    assert doc.title == "Turkey and Libya sign a new training deal"
    assert rules_of(doc) == {"in": "short-fragment", "Turkey and Libya sign a new training deal": "headline"}
    assert body_lines(doc) == LONG_PARAGRAPHS[:3]


def test_standfirst_after_the_headline_stays_in_the_body():
    standfirst = "Ankara will train Libyan naval officers for two more years"
    text = "\n".join(["Turkey and Libya extend training deal", standfirst, *LONG_PARAGRAPHS[:3]])
    doc = strip(Document(text=text))
    assert doc.title == "Turkey and Libya extend training deal"
    assert body_lines(doc)[0] == standfirst


def test_known_title_repeated_as_first_line_is_removed_and_no_other_headline_is_guessed():
    text = "\n".join(
        ["Turkey and Libya sign a new training deal", "Ankara will train Libyan officers", *LONG_PARAGRAPHS[:3]]
    )
    doc = strip(Document(text=text, title="Turkey and Libya sign a new training deal"))
    assert doc.title == "Turkey and Libya sign a new training deal"
    assert doc.removed == [RemovedLine("Turkey and Libya sign a new training deal", "headline")]
    assert body_lines(doc)[0] == "Ankara will train Libyan officers"


def test_text_without_body_paragraphs_is_left_alone():
    doc = strip(Document(text="Short note\nAnother short line"))
    assert (doc.text, doc.title, doc.removed) == ("Short note\nAnother short line", None, [])


# --- metadata -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dateline, iso",
    [
        ("تاريخ النشر: 1st, March 2024 GMT", "2024-03-01"),
        ("Published: March 1, 2024", "2024-03-01"),
        ("Yayınlanma: 01 Mart 2024, 10:15", "2024-03-01"),
        ("Yayınlanma Tarihi: 01.03.2024 - 10:15", "2024-03-01"),
        ("نشر في: ١ آذار ٢٠٢٤", "2024-03-01"),
        ("تاريخ النشر: 2024-03-01T09:30:00Z", "2024-03-01"),
        ("Published: yesterday evening", "yesterday evening"),
    ],
)
def test_dateline_fills_published_at_as_iso_date_or_raw(dateline, iso):
    doc = strip(Document(text="\n".join([dateline, *ARTICLE]), title="Ministers meet"))
    assert doc.published_at == iso


FETCHED_AT = "2024-03-05T12:30:45+00:00"


@pytest.mark.parametrize(
    "dateline, iso",
    [
        # Arabic months, the common series and the Levantine one, with Arabic-Indic digits
        ("تاريخ النشر: 15 يناير 2024", "2024-01-15"),
        ("تاريخ النشر: ٢ فبراير ٢٠٢٤", "2024-02-02"),
        ("تاريخ النشر: 3 كانون الثاني 2024", "2024-01-03"),
        ("تاريخ النشر: ١٠ تشرين الأول ٢٠٢٣", "2023-10-10"),
        ("نشر في: 28 شباط 2024", "2024-02-28"),
        ("نشر في: 7 أيلول 2023 - 10:15", "2023-09-07"),
        # Turkish months: "Mart" is March, not a time zone
        ("Yayınlanma: 1 Mart 2024 Cuma 10:15", "2024-03-01"),
        ("Giriş: 19 Ağustos 2023", "2023-08-19"),
        ("Yayın tarihi: 31 Aralık 2023", "2023-12-31"),
    ],
)
def test_regional_month_names_and_digits(dateline, iso):
    doc = strip(Document(text="\n".join([dateline, *ARTICLE]), title="Ministers meet"))
    assert doc.published_at == iso
    assert rules_of(doc)[dateline] == "marker:dateline"


@pytest.mark.parametrize(
    "dateline, iso",
    [
        ("تاريخ النشر: منذ ساعتين", "2024-03-05T10:30:00+00:00"),
        ("تاريخ النشر: منذ 3 ساعات", "2024-03-05T09:30:00+00:00"),
        ("نشر في: قبل ٥ دقائق", "2024-03-05T12:25:00+00:00"),
        ("نشر في: منذ يومين", "2024-03-03"),
        ("Yayınlanma: 2 saat önce", "2024-03-05T10:30:00+00:00"),
        ("Yayınlanma: 3 gün önce", "2024-03-02"),
        ("Yayınlanma: dün", "2024-03-04"),
        ("Published: 3 hours ago", "2024-03-05T09:30:00+00:00"),
        ("Published: an hour ago", "2024-03-05T11:30:00+00:00"),
        ("Published: 1 week ago", "2024-02-27"),
        ("Published: yesterday", "2024-03-04"),
    ],
)
def test_relative_dates_count_back_from_the_fetch_time(dateline, iso):
    doc = strip(Document(text="\n".join([dateline, *ARTICLE]), title="Ministers meet", fetched_at=FETCHED_AT))
    assert doc.published_at == iso


def test_a_relative_date_without_a_fetch_time_is_kept_as_written():
    doc = strip(Document(text="\n".join(["Published: 3 hours ago", *ARTICLE]), title="Ministers meet"))
    assert doc.published_at == "3 hours ago"


@pytest.mark.parametrize(
    "line, iso",
    [
        ("منذ ساعتين", "2024-03-05T10:30:00+00:00"),
        ("2 saat önce", "2024-03-05T10:30:00+00:00"),
        ("3 hours ago", "2024-03-05T09:30:00+00:00"),
        ("1 Mart 2024", "2024-03-01"),
        ("الأحد ٣ آذار ٢٠٢٤", "2024-03-03"),
        ("الجمعة 1 مارس 2024 - 10:15", "2024-03-01"),
        ("Friday, 1 March 2024, 10:15 GMT", "2024-03-01"),
    ],
)
def test_a_line_that_is_only_a_date_goes_into_published_at(line, iso):
    doc = strip(Document(text="\n".join([line, *ARTICLE]), title="Ministers meet", fetched_at=FETCHED_AT))
    assert (doc.published_at, rules_of(doc)) == (iso, {line: "marker:date-line"})
    assert body_lines(doc) == ARTICLE


@pytest.mark.parametrize(
    "line",
    [
        "March 2024",  # no day: not a date this rule can read
        "Talks resume 1 March 2024",  # words besides the date: a headline or a sentence
        "Two hours",  # a duration, not a time before the fetch
    ],
)
def test_lines_that_are_more_or_less_than_a_date_are_not_datelines(line):
    doc = strip(
        Document(text="\n".join([*ARTICLE[:2], line, ARTICLE[2]]), title="Ministers meet", fetched_at=FETCHED_AT)
    )
    assert line in body_lines(doc) and doc.published_at is None


def test_metadata_already_known_is_not_overwritten():
    text = "\n".join(["By Jane Doe", "Published: March 1, 2024", *ARTICLE, "Source: Reuters", "Tags: Libya"])
    known = Document(
        text=text,
        title="Ministers meet",
        author="John Roe",
        published_at="2024-02-29",
        credit="AFP",
        keywords=["Turkey"],
    )
    doc = strip(known)
    assert (doc.author, doc.published_at, doc.credit, doc.keywords) == ("John Roe", "2024-02-29", "AFP", ["Turkey"])
    assert body_lines(doc) == ARTICLE


@pytest.mark.parametrize(
    "dateline, iso",
    [
        ("الأربعاء، 28 آب/اغسطس 2013", "2013-08-28"),
        ("تاريخ النشر: 12 مارس 2014", "2014-03-12"),
        ("Yayınlanma: 5 Haziran 2014 Perşembe", "2014-06-05"),
    ],
)
def test_a_full_date_from_the_text_beats_a_year_only_guess(dateline, iso):
    year = iso[:4]
    doc = strip(Document(text="\n".join([dateline, *ARTICLE]), title="Ministers meet", published_at=f"{year}-01-01"))
    assert doc.published_at == iso


def test_a_full_date_already_known_is_kept_and_so_is_1_january_itself():
    text = "\n".join(["تاريخ النشر: 12 مارس 2014", *ARTICLE])
    assert strip(Document(text=text, title="T", published_at="2014-03-11")).published_at == "2014-03-11"
    new_year = "\n".join(["Published: 1 January 2014", *ARTICLE])
    assert strip(Document(text=new_year, title="T", published_at="2014-01-01")).published_at == "2014-01-01"


@pytest.mark.parametrize(
    "line, author, iso",
    [
        ("Fatma Sevinç Çetin / 20 Nisan 2026•Güncelleme: 21 Nisan 2026", "Fatma Sevinç Çetin", "2026-04-20"),
        ("Ahmet Yılmaz | 03.02.2025", "Ahmet Yılmaz", "2025-02-03"),
        ("Jane Doe / 4 March 2024 • Updated: 5 March 2024", "Jane Doe", "2024-03-04"),
    ],
)
def test_an_agency_byline_block_of_name_and_dates_goes_and_fills_author_and_date(line, author, iso):
    doc = strip(Document(text="\n".join([line, *ARTICLE]), title="Ministers meet"))
    assert (doc.author, doc.published_at, rules_of(doc)) == (author, iso, {line: "marker:dated-byline"})
    assert body_lines(doc) == ARTICLE


@pytest.mark.parametrize("line", ["Ankara / İstanbul", "Libya / Türkiye / 2026 hedefleri", "Ali ve Veli / 3 ürün"])
def test_a_line_of_places_or_words_between_slashes_is_no_byline(line):
    doc = strip(Document(text="\n".join([*ARTICLE[:2], line, ARTICLE[2]]), title="Ministers meet"))
    assert line in body_lines(doc) and doc.author is None


def test_site_name_known_from_the_page_is_removed_wherever_it_stands():
    doc = strip(
        Document(
            text="\n".join([*ARTICLE[:2], "Libya Observer", ARTICLE[2]]),
            title="Ministers meet",
            site_name="Libya Observer",
        )
    )
    assert rules_of(doc) == {"Libya Observer": "site-name"}


# --- markers file ---------------------------------------------------------------------------------


def test_markers_come_from_the_users_file(tmp_path):
    path = tmp_path / "boilerplate.yaml"
    path.write_text("rules:\n  - id: sponsor\n    match: heading\n    phrases: [Sponsored by Acme]\n", encoding="utf-8")
    doc = strip(Document(text="\n".join([*ARTICLE, "Sponsored by ACME"]), title="t"), load_markers(path))
    assert rules_of(doc) == {"Sponsored by ACME": "marker:sponsor"}


def test_default_markers_follow_the_configured_folder(tmp_path, monkeypatch):
    (tmp_path / "boilerplate.yaml").write_text(
        "rules:\n  - id: only-rule\n    match: heading\n    phrases: [Advertisement]\n", encoding="utf-8"
    )
    monkeypatch.setenv("MIRSAD_CONFIG_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert [rule.id for rule in default_markers().rules] == ["only-rule"]
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert "copyright-notice" in [rule.id for rule in default_markers().rules]


@pytest.mark.parametrize(
    "rule_yaml, complaint",
    [
        ("  - id: x\n    match: everywhere\n    phrases: [a]\n", "match"),
        ("  - id: x\n    match: contains\n    phrases: [a]\n", "max_words"),
        ("  - id: x\n    match: heading\n    fills: title\n    phrases: [a]\n", "fills"),
        ("  - id: x\n    match: heading\n", "no phrases"),
    ],
)
def test_a_malformed_rule_is_refused_with_its_id(tmp_path, rule_yaml, complaint):
    path = tmp_path / "boilerplate.yaml"
    path.write_text("rules:\n" + rule_yaml, encoding="utf-8")
    with pytest.raises(ValueError, match=complaint) as error:
        load_markers(path)
    assert "'x'" in str(error.value)


# --- speed ----------------------------------------------------------------------------------------


def test_strip_is_fast_on_a_5000_character_article():
    text = "\n\n".join([fixture_text("ar_dateline_tags_readalso.txt")] * 5)[:5000]
    doc = Document(text=text)
    strip(doc)
    runs = 50
    start = time.perf_counter()
    for _ in range(runs):
        strip(doc)
    per_call = (time.perf_counter() - start) / runs
    assert per_call < 0.025, f"strip took {per_call * 1000:.1f} ms on 5,000 characters"
