"""classify: matching edge cases per language, each tag kind, no defence topic on other news, editable vocabularies.

All texts here are written for these tests.
"""

from __future__ import annotations

import shutil
import time

import pytest

from workers.classify import classify, default_vocabulary, detect_language, load_vocabulary
from workers.document import Document
from workers.gazetteer import FoldedText, Gazetteer, Term, longest
from workers.settings import PROJECT_ROOT, get_settings
from workers.textnorm import fold_words

CONFIG = PROJECT_ROOT / "config"
DEFENCE_TOPICS = {"defence-cooperation", "military-training", "armed-conflict", "defence-industry", "maritime-security"}


@pytest.fixture(scope="module")
def vocabulary():
    return load_vocabulary(CONFIG)


def tags_of(text: str, vocabulary, title: str | None = None, kind: str | None = None):
    tags = classify(Document(text=text, title=title), vocabulary)
    return [t for t in tags if kind is None or t.kind == kind]


def countries(text: str, vocabulary) -> set[str]:
    return {t.value for t in tags_of(text, vocabulary, kind="country")}


def topics(text: str, vocabulary, title: str | None = None) -> set[str]:
    return {t.value for t in tags_of(text, vocabulary, title, kind="topic")}


# --- matching ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["وتركيا", "بتركيا", "لتركيا", "فتركيا", "وبتركيا", "بليبيا", "لليبيا", "وليبيا"])
def test_arabic_clitics_before_a_country_name(text, vocabulary):
    assert countries(text, vocabulary) & {"TR", "LY"}


@pytest.mark.parametrize("text, code", [
    ("التركي", "TR"), ("التركية", "TR"), ("الأتراك", "TR"), ("والأتراك", "TR"), ("للتركية", "TR"),
    ("التركيان", "TR"), ("الليبي", "LY"), ("الليبية", "LY"), ("الليبيين", "LY"), ("بالليبيين", "LY"),
    ("المصري", "EG"), ("الروس", "RU"), ("للروس", "RU"), ("روسي", "RU"),
])
def test_arabic_nisba_adjectives_and_plurals(text, code, vocabulary):
    assert countries(text, vocabulary) == {code}


@pytest.mark.parametrize("text", ["دروس", "الدروس", "مدروس", "تركيب", "ليبيات", "التركيز"])
def test_arabic_names_never_match_inside_other_words(text, vocabulary):
    assert countries(text, vocabulary) == set()


def test_arabic_prefix_that_is_no_clitic_is_refused():
    gazetteer = Gazetteer([Term("روس", "RU")])
    assert gazetteer.find("دروس") == []
    assert [m.evidence for m in gazetteer.find("وروس")] == ["وروس"]


def test_arabic_article_only_where_the_term_allows_it():
    gazetteer = Gazetteer([Term("قطر", "QA"), Term("جيش", "army", article=True)])
    assert gazetteer.find("القطر") == []
    assert [m.evidence for m in gazetteer.find("للجيش بالجيش والجيش الجيش")] == ["للجيش", "بالجيش", "والجيش", "الجيش"]


@pytest.mark.parametrize("text, code", [
    ("Libya'ya gitti", "LY"), ("Türkiye'nin", "TR"), ("TÜRKİYE'NİN", "TR"), ("Türklerin", "TR"),
    ("Libyalılar", "LY"), ("Libyalıların", "LY"), ("Rusya'dan", "RU"), ("ABD'li yetkililer", "US"),
    ("İtalya'ya", "IT"), ("Mısır'ın", "EG"),
])
def test_turkish_suffixes_with_and_without_apostrophe(text, code, vocabulary):
    assert code in countries(text, vocabulary)


@pytest.mark.parametrize("text, code", [("Turkiye", "TR"), ("Libyali askerler", "LY"), ("Turkler", "TR"),
                                        ("Yasar Guler Misir'a gitti", "EG"), ("Ukrayna", "UA")])
def test_ascii_folded_spellings(text, code, vocabulary):
    assert code in countries(text, vocabulary)


@pytest.mark.parametrize("text", ["a roast turkey for dinner", "mali destek paketi", "let us know", "china cups",
                                  "Türkçe"])
def test_latin_country_names_count_only_as_proper_nouns(text, vocabulary):
    assert countries(text, vocabulary) == set()


def test_acronyms_need_capitals(vocabulary):
    assert countries("The US and the UK", vocabulary) == {"US", "GB"}
    assert countries("He told us to wait.", vocabulary) == set()


def test_longest_name_wins(vocabulary):
    assert countries("South Sudan", vocabulary) == {"SS"}
    assert countries("جنوب السودان", vocabulary) == {"SS"}
    assert countries("الإمارات العربية المتحدة", vocabulary) == {"AE"}
    assert countries("Sudan", vocabulary) == {"SD"}


def test_ignored_phrases_hide_the_name_inside(vocabulary):
    assert countries("ships in the Indian Ocean", vocabulary) == set()
    assert countries("Indian ships", vocabulary) == {"IN"}


def test_wildcard_matches_any_continuation_of_the_word():
    gazetteer = Gazetteer([Term("تدريب*", "training", article=True), Term("train*", "training")])
    found = gazetteer.find("التدريبات ولتدريب training trains restrain")
    assert [m.evidence for m in found] == ["التدريبات", "ولتدريب", "training", "trains"]


def test_longest_prefers_longer_terms_and_keeps_disjoint_ones():
    gazetteer = Gazetteer([Term("Sudan", "SD"), Term("South Sudan", "SS")])
    assert [m.target for m in longest(gazetteer.find("South Sudan and Sudan"))] == ["SS", "SD"]


@pytest.mark.parametrize("text", [
    "وَقَّعَتْ تُرْكِيَا وَلِيبْيَا اتِّفَاقِيَّةً، «جديدة» — اليوم!",
    "TÜRKİYE'NİN Libya'ya desteği (ABD/AB) sürüyor…",
    "The U.S.-Turkish talks, in Ankara; ٢٠٢٤",
])
def test_folded_words_agree_with_textnorm(text):
    assert FoldedText(text).string == fold_words(text)


def test_evidence_is_the_words_as_written(vocabulary):
    [tag] = tags_of("وقّعت تُركيا الاتفاق", vocabulary, kind="country")
    assert tag.evidence == ["تُركيا"]
    [tag] = tags_of("Türkiye'nin desteği", vocabulary, kind="country")
    assert tag.evidence == ["Türkiye"]


# --- tag kinds -------------------------------------------------------------------------------------------------

ARABIC_DEFENCE = (
    "تركيا وليبيا توقعان مذكرة تفاهم للتعاون العسكري",
    "وقع وزير الدفاع الليبي ونظيره التركي في أنقرة مذكرة تفاهم للتعاون العسكري بين البلدين، تشمل برامج لتدريب "
    "وحدات الجيش الليبي وتأهيل الضباط في الكليات العسكرية التركية. وقال الوزير إن التعاون العسكري مع تركيا "
    "سيتوسع ليشمل تدريب القوات البحرية وخفر السواحل، مؤكدا أن الأتراك قدموا دعما كبيرا للجيش.")
ENGLISH_DEFENCE = (
    "Turkey and Libya sign military training deal",
    "Turkey and Libya signed a military cooperation agreement on Tuesday under which Turkish officers will train "
    "Libyan troops. The defence ministry in Ankara said the deal covers training of Libyan army units and joint "
    "naval exercises. Baykar, the Turkish drone maker, is expected to deliver more Bayraktar TB2 drones to the "
    "Libyan air force, and the Libyan defence minister visited Turkish military academies.")
TURKISH_DEFENCE = (
    "Türkiye ile Libya arasında askeri işbirliği anlaşması",
    "Türkiye ile Libya arasında askeri eğitim ve işbirliği anlaşması imzalandı. Milli Savunma Bakanlığı, anlaşma "
    "kapsamında Libyalı askerlerin Türk Silahlı Kuvvetleri tarafından eğitileceğini duyurdu. Libya ordusuna yönelik "
    "eğitim programı, özel kuvvetler ve deniz kuvvetlerinin ortak tatbikatlarını da kapsıyor.")


@pytest.mark.parametrize("article, expected", [
    (ARABIC_DEFENCE, {"defence-cooperation", "military-training"}),
    (ENGLISH_DEFENCE, {"defence-cooperation", "military-training", "defence-industry"}),
    (TURKISH_DEFENCE, {"defence-cooperation", "military-training"}),
])
def test_defence_articles_get_their_topics(article, expected, vocabulary):
    title, body = article
    assert expected <= topics(body, vocabulary, title)


def test_every_tag_kind_with_scores_and_evidence(vocabulary):
    title, body = ARABIC_DEFENCE
    tags = tags_of(body, vocabulary, title)
    assert tags[0].kind == "language" and tags[0].value == "ar" and 0.5 < tags[0].score <= 1
    by_value = {t.value: t for t in tags if t.kind == "country"}
    assert set(by_value) == {"TR", "LY"}
    assert {"تركيا", "التركي", "الأتراك"} <= set(by_value["TR"].evidence)
    assert all(0 < t.score < 1 for t in by_value.values())
    cooperation = next(t for t in tags if t.kind == "topic" and t.value == "defence-cooperation")
    assert "العسكري" in cooperation.evidence and 0.5 <= cooperation.score <= 1


def test_people_and_organisations_from_the_watchlist(vocabulary):
    text = ("التقى خولوصي أكار وصدام حفتر في بنغازي، ثم زار حفتر أنقرة. "
            "Hulusi Akar'ın NATO'nun toplantısında Erdogan ile görüştüğü bildirildi.")
    tags = tags_of(text, vocabulary)
    persons = {t.value: t for t in tags if t.kind == "person"}
    assert set(persons) == {"Hulusi Akar", "Saddam Haftar", "Khalifa Haftar", "Recep Tayyip Erdoğan"}
    assert persons["Hulusi Akar"].evidence == ["خولوصي أكار", "Hulusi Akar"]
    assert persons["Saddam Haftar"].evidence == ["وصدام حفتر"]
    assert [t.value for t in tags if t.kind == "org"] == ["NATO"]


def places(text: str, vocabulary, title: str | None = None) -> dict[str, str]:
    """place → its country, read from the first item of the tag's evidence."""
    found = {}
    for tag in tags_of(text, vocabulary, title, kind="place"):
        label, code = tag.evidence[0].split(":")
        assert label == "country" and tag.evidence[1:]
        found[tag.value] = code
    return found


@pytest.mark.parametrize("text, expected", [
    ("وصل الوفد إلى أنقرة ثم إلى بنغازي ومصراتة", {"Ankara": "TR", "Benghazi": "LY", "Misrata": "LY"}),
    ("وبأنطاليا عقد المنتدى، ولإسطنبول عاد الوزير", {"Antalya": "TR", "Istanbul": "TR"}),
    ("Heyet Ankara'dan Bingazi'ye, oradan Misrata'ya geçti; İstanbul'da toplantı yapıldı.",
     {"Ankara": "TR", "Benghazi": "LY", "Misrata": "LY", "Istanbul": "TR"}),
    ("ISTANBUL'DA ve Antalyada", {"Istanbul": "TR", "Antalya": "TR"}),
    ("Turkish drones landed at al-Watiya air base, south-west of Tripoli, and at Misurata airport.",
     {"al-Watiya": "LY", "Tripoli": "LY", "Misrata": "LY"}),
    ("هبطت الطائرات في قاعدة الوطية ثم في سبها وطبرق، ووصل الوفد إلى القاهرة والدوحة",
     {"al-Watiya": "LY", "Sabha": "LY", "Tobruk": "LY", "Cairo": "EG", "Doha": "QA"}),
])
def test_places_with_their_country(text, expected, vocabulary):
    assert places(text, vocabulary) == expected


@pytest.mark.parametrize("text, code", [
    ("وقعت ليبيا وتركيا اتفاقا عسكريا في طرابلس", "LY"),
    ("اشتباكات بين مسلحين في مدينة طرابلس شمال لبنان", "LB"),
    ("اشتباكات في طرابلس اللبنانية أمس", "LB"),
    ("ارتفعت الأسعار في طرابلس الشام", "LB"),
    ("قتيلان في إطلاق نار بمدينة طرابلس في الشمال", "LB"),
    ("وصل الوزير إلى طرابلس", "LY"),
    ("Protests spread in Tripoli, Lebanon's second city, as the Lebanese pound fell.", "LB"),
    ("Libya's government in Tripoli signed the deal with Turkey.", "LY"),
    ("Heyet Trablus'ta Libya Başbakanı ile görüştü.", "LY"),
    ("Lübnan'ın kuzeyindeki Trablus kentinde gösteriler sürüyor.", "LB"),
])
def test_tripoli_of_libya_told_from_tripoli_of_lebanon(text, code, vocabulary):
    assert places(text, vocabulary) == {"Tripoli": code}


def test_tripoli_goes_by_the_country_named_nearest(vocabulary):
    lebanon = "تظاهر المئات في طرابلس شمال لبنان احتجاجا على انقطاع الكهرباء. "
    libya = "وفي ليبيا، أعلنت حكومة الوحدة الوطنية في طرابلس خطة جديدة للطاقة. "
    filler = "وقال مسؤولون إن الوضع ما زال صعبا في المدينة منذ أسابيع طويلة. " * 4
    tags = tags_of(lebanon + filler + libya, vocabulary, kind="place")
    assert sorted(t.evidence[0] for t in tags if t.value == "Tripoli") == ["country:LB", "country:LY"]


@pytest.mark.parametrize("text, expected", [
    ("من هذه الزاوية يمكن فهم القرار", {}),
    ("سرت شائعات عن استقالة المدرب", {}),
    ("اشتباكات في الزاوية غرب ليبيا", {"Zawiya": "LY"}),
    ("تقدمت القوات نحو سرت بعد معارك قرب بنغازي", {"Sirte": "LY", "Benghazi": "LY"}),
])
def test_place_names_that_are_common_words_need_their_country(text, expected, vocabulary):
    assert places(text, vocabulary) == expected


@pytest.mark.parametrize("spellings, name", [
    (["خلوصي أكار", "خولوصي أكار", "خلوصي آكار", "Hulusi Akar", "HULUSİ AKAR'ın"], "Hulusi Akar"),
    (["عبد الحميد الدبيبة", "الدبيبة", "والدبيبه", "Dbeibah", "Dbeiba", "Dibeybe'nin"], "Abdul Hamid Dbeibah"),
    (["خليفة حفتر", "حفتر", "لحفتر", "Haftar", "Hafter'in", "Halife Hafter"], "Khalifa Haftar"),
    (["ياشار غولر", "يشار غولر", "Yaşar Güler", "Yasar Guler", "YAŞAR GÜLER"], "Yaşar Güler"),
    (["Recep Tayyip Erdoğan", "Erdogan'ın", "أردوغان", "وإردوغان"], "Recep Tayyip Erdoğan"),
    (["فتحي باشاغا", "Fathi Bashagha", "Başağa"], "Fathi Bashagha"),
    (["عقيلة صالح", "Aguila Saleh"], "Aguila Saleh"),
    (["Selçuk Bayraktar", "سلجوق بيرقدار"], "Selçuk Bayraktar"),
])
def test_watchlist_spelling_variants(spellings, name, vocabulary):
    for spelling in spellings:
        assert {t.value for t in tags_of(f"— {spelling} —", vocabulary, kind="person")} == {name}, spelling


@pytest.mark.parametrize("text, expected", [
    ("وقال أكار إن الجيش مستعد", set()),
    ("Güler golünü attı ve takımını galibiyete taşıdı", set()),
    ("التقى وزير الدفاع خلوصي أكار نظيره الليبي. وقال أكار إن التعاون مستمر", {"Hulusi Akar"}),
    ("Akar: işbirliği sürecek. Milli Savunma Bakanı Hulusi Akar, Libya'yı ziyaret etti.", {"Hulusi Akar"}),
    ("تحدث المنفي عن حياته في المنفى", set()),
    ("استقبل رئيس المجلس الرئاسي محمد المنفي الوفد، وأكد المنفي دعمه", {"Mohamed al-Menfi"}),
])
def test_a_surname_alone_counts_only_after_a_full_mention(text, expected, vocabulary):
    assert {t.value for t in tags_of(text, vocabulary, kind="person")} == expected


def test_a_later_surname_adds_to_the_full_mention(vocabulary):
    [tag] = tags_of("التقى خلوصي أكار نظيره، ثم قال أكار إن التعاون مستمر", vocabulary, kind="person")
    assert tag.value == "Hulusi Akar" and tag.evidence == ["خلوصي أكار", "أكار"]
    assert tag.score > tags_of("التقى خلوصي أكار نظيره", vocabulary, kind="person")[0].score


def test_first_names_in_a_family_story(vocabulary):
    text = "التقى الوفد قادة قوات حفتر وعلى رأسهم نجله خالد وشقيقه صدام، ثم التقى خالد المشري"
    assert {t.value for t in tags_of(text, vocabulary, kind="person")} == {
        "Khalifa Haftar", "Khaled Haftar", "Saddam Haftar", "Khalid al-Mishri"}
    assert {t.value for t in tags_of("أعدم صدام حسين عام 2006 وقال خالد إن", vocabulary, kind="person")} == set()


@pytest.mark.parametrize("text, org", [
    ("Libya'da Ulusal Birlik Hükümeti açıklama yaptı", "Government of National Unity"),
    ("قالت حكومة الوحدة الوطنية إن", "Government of National Unity"),
    ("The Government of National Accord (GNA) asked Ankara for help", "Government of National Accord"),
    ("أعلن الجيش الوطني الليبي", "Libyan National Army"),
    ("The 444 Brigade deployed south of the capital", "444 Brigade"),
    ("قوات اللواء 444 قتال", "444 Brigade"),
    ("Baykar'ın yeni İHA'sı", "Baykar"),
    ("ASELSAN ve Roketsan ortak", "Aselsan"),
    ("TUSAŞ tesislerinde", "Turkish Aerospace"),
    ("بعثة الأمم المتحدة للدعم في ليبيا", "UNSMIL"),
    ("سفن عملية إيريني الأوروبية", "EU IRINI"),
    ("NATO'nun toplantısında", "NATO"),
])
def test_organisations_of_the_field(text, org, vocabulary):
    assert org in {t.value for t in tags_of(text, vocabulary, kind="org")}


def test_country_score_grows_with_mentions(vocabulary):
    once = tags_of("Libya", vocabulary, kind="country")[0].score
    thrice = tags_of("Libya. Libyan. Libya'da", vocabulary, kind="country")[0].score
    assert 0 < once < thrice < 1


def test_maritime_and_migration_topics(vocabulary):
    text = ("The coast guard intercepted a boat of migrants off the Libyan coast. Refugees and asylum seekers "
            "were taken to Malta. The navy stepped up patrols in territorial waters after the incident, and the "
            "coast guard said maritime security would be reinforced.")
    assert {"migration", "maritime-security"} <= topics(text, vocabulary)


def test_energy_topic(vocabulary):
    text = ("Libya's oil production rose as the pipeline to the coast reopened. The national oil company said "
            "crude exports and natural gas output would grow, and a hydrocarbons agreement was signed.")
    assert "energy" in topics(text, vocabulary)


def test_diplomatic_visit_topic(vocabulary):
    text = ("Türkiye Dışişleri Bakanı Trablus'a resmi bir ziyaret gerçekleştirdi. Bakan, ziyaret sırasında "
            "Libya Başbakanı ile görüştü. Heyet, ziyaretin ardından Bingazi'yi de ziyaret etti; bakan ziyaretini "
            "iki ülke arasındaki ilişkiler için önemli buldu.")
    assert "diplomatic-visit" in topics(text, vocabulary)


@pytest.mark.parametrize("title, body, code", [
    ("Türkiye ile Libya", "Türkiye ile Libya arasında imzalanan anlaşma, iki ülkenin askeri ilişkilerini "
     "güçlendirecek ve bölgedeki istikrara katkı sağlayacak.", "tr"),
    ("Libya", "وقعت ليبيا وتركيا اتفاقية جديدة للتعاون في مجالات الطاقة والتدريب، وقال المسؤولون إن الاتفاق "
     "يعزز العلاقات بين البلدين.", "ar"),
    ("Türkiye", "Turkey and Libya signed a new agreement on energy and training, and officials said it would "
     "strengthen relations between the two countries.", "en"),
])
def test_language_detected_on_title_and_body(title, body, code, vocabulary):
    [language] = tags_of(body, vocabulary, title, kind="language")
    assert language.value == code and language.score > 0.5


def test_a_headline_of_names_does_not_decide_the_language(vocabulary):
    title = "Bayraktar Akinci drones delivered to Libya"
    body = ("Libya'ya gönderilen insansız hava araçları, Türk ordusunun eğitim programı kapsamında teslim edildi ve "
            "Libyalı pilotlar eğitime başladı.")
    [language] = tags_of(body, vocabulary, title, kind="language")
    assert language.value == "tr"


@pytest.mark.parametrize("text, raw", [
    ("انا مش عارف هو عايز ايه بجد، ده كلام فاضي خالص والناس كلها زهقت من الموضوع ده", "arz"),
    ("واش نتا مزيان؟ بغيت نمشي للدار دابا حيت عيان بزاف", "ary"),
])
def test_arabic_dialect_labels_fold_to_ar_keeping_the_raw_label(text, raw):
    language = detect_language(text)
    assert (language.value, language.evidence) == ("ar", [raw]) and language.score > 0.9


def test_no_language_tag_for_empty_text(vocabulary):
    assert detect_language("   ") is None
    assert tags_of("", vocabulary) == []


# --- no defence topic on other news ----------------------------------------------------------------------------

NON_DEFENCE = {
    "sports-en": ("United beat City in a tense derby",
                  "The home side's attack was relentless in the second half, and the striker scored twice after the "
                  "team had trained hard all week at the academy. The coach praised the defence and said the squad's "
                  "training camp in Turkey had paid off. Fans from Spain and France filled the stadium as the league "
                  "leaders extended their lead. The captain said the battle for the title is far from over, and the "
                  "club will fight for every point in the championship."),
    "sports-ar": ("المنتخب يفوز على ضيفه في مباراة مثيرة",
                  "حقق المنتخب الوطني فوزا مهما في مباراة الأمس بعد هجوم مكثف في الشوط الثاني، وسجل المهاجم هدفين. "
                  "وقال المدرب إن التدريبات المكثفة في معسكر الفريق بتركيا أتت ثمارها، وإن خط الدفاع كان قويا. "
                  "وأشاد رئيس النادي بالجماهير التي ملأت الملعب، مؤكدا أن المعركة على لقب الدوري ما زالت مفتوحة "
                  "وأن اللاعبين مستعدون لبطولة كأس العرب."),
    "sports-tr": ("Galatasaray derbide rakibini yendi",
                  "Sarı kırmızılılar maçın ikinci yarısında etkili bir hücum oyunu sergiledi ve forvet iki gol attı. "
                  "Teknik direktör, takımın Antalya'daki kamp döneminde yaptığı antrenmanların ve eğitim programının "
                  "meyvesini verdiğini söyledi. Savunma hattı da başarılı bir performans gösterdi. Kulüp başkanı, "
                  "Süper Lig'de şampiyonluk savaşının sürdüğünü, taraftarların desteğiyle her maça final gibi "
                  "çıkacaklarını belirtti."),
    "health-en": ("New vaccine trial shows promise against malaria",
                  "Researchers in Kenya and the United Kingdom said the vaccine reduced infections by half in a trial "
                  "of 5,000 children. Health workers on the front line of the fight against the disease welcomed the "
                  "results. The World Health Organization said the campaign to train nurses and expand clinics would "
                  "continue, and the health minister visited a hospital in Nairobi to meet doctors fighting the "
                  "outbreak."),
    "health-ar": ("وزارة الصحة تطلق حملة للتطعيم ضد الحصبة",
                  "أعلنت وزارة الصحة المصرية إطلاق حملة وطنية لتطعيم الأطفال ضد الحصبة، بعد تسجيل إصابات في عدة "
                  "محافظات. وقال وزير الصحة خلال زيارته لأحد المستشفيات إن الحملة تشمل تدريب الكوادر الطبية وتأهيل "
                  "الممرضين، وإن المعركة ضد الأمراض المعدية تتطلب تعاون المواطنين. وأكدت منظمة الصحة العالمية "
                  "دعمها للحملة."),
    "health-tr": ("Sağlık Bakanlığı grip aşısı kampanyası başlattı",
                  "Sağlık Bakanı, kış aylarında artan grip vakalarına karşı yeni bir aşı kampanyası başlatıldığını "
                  "açıkladı. Bakan, hastane ziyaretinde sağlık çalışanlarının eğitimine ve hemşirelerin mesleki "
                  "gelişimine önem verdiklerini söyledi. Uzmanlar, virüsle mücadelede toplumun desteğinin kritik "
                  "olduğunu vurguladı."),
    "tech-en": ("Chipmaker unveils faster AI processor",
                "The company said its new processor trains large language models twice as fast while using less "
                "energy. Engineers demonstrated delivery drones and a robot arm at the launch in California. Analysts "
                "said the partnership with a Japanese manufacturer would help the firm compete in China, where an "
                "attack on its servers last year exposed customer data. The firm plans to export the chips."),
    "tech-ar": ("شركة ناشئة تطلق تطبيقا للذكاء الاصطناعي",
                "أطلقت شركة ناشئة سعودية تطبيقا جديدا يعتمد على الذكاء الاصطناعي لتحليل الصور الطبية، وقالت إنها "
                "دربت النموذج على ملايين الصور. وأوضح المدير التنفيذي أن الشركة تعمل على تطوير منظومة حوسبة سحابية "
                "بالتعاون مع شركاء في الإمارات، وأنها تعرضت لهجوم إلكتروني العام الماضي."),
    "tech-tr": ("Yerli elektrikli otomobil yeni modelini tanıttı",
                "Türk otomobil girişimi, yeni elektrikli modelinin batarya kapasitesini ve şarj süresini açıkladı. "
                "Şirketin genel müdürü, yazılım ekibinin yapay zekâ modellerini eğitmek için büyük veri merkezleri "
                "kullandığını söyledi. Almanya ve Fransa'ya ihracat planlarından da bahsetti."),
    "culture-en": ("Istanbul film festival opens with a war drama",
                   "The festival opened on Friday with a drama about two brothers who leave their village, and a "
                   "retrospective of Turkish cinema. The director said the film was shot in Greece and Cyprus with "
                   "a cast of young actors who trained for months. The museum of modern art also hosts an "
                   "exhibition of photographs, and a concert of Ottoman music closes the week."),
    "culture-ar": ("افتتاح معرض الكتاب الدولي في القاهرة",
                   "افتتح وزير الثقافة معرض القاهرة الدولي للكتاب بمشاركة دور نشر من لبنان والمغرب وتونس. ويضم "
                   "المعرض ندوات عن الرواية العربية وأمسيات شعرية، إضافة إلى ورش لتدريب الشباب على الكتابة. وقال "
                   "الوزير إن التعاون الثقافي مع الدول العربية يشهد تطورا كبيرا."),
    "culture-tr": ("İstanbul'da klasik müzik festivali başladı",
                   "Festivalin açılış konserinde genç müzisyenler sahne aldı. Organizatörler, bu yıl İtalya ve "
                   "Avusturya'dan orkestraların da katılacağını söyledi. Festival kapsamında çocuklara yönelik müzik "
                   "eğitimi atölyeleri de düzenlenecek."),
    "disaster-en": ("Floods sweep through coastal towns after record rainfall",
                    "Rescue teams and civil defence units worked through the night after floods hit three coastal "
                    "towns. The interior minister said emergency services and volunteers from the Red Crescent "
                    "received support from neighbouring provinces, and the government approved an aid package for "
                    "families who lost their homes. Helicopters evacuated stranded residents, and forecasters warned "
                    "of more storms this week. The minister visited the worst-hit district on Sunday."),
    "crime-en": ("Police dismantle drug smuggling ring at the port",
                 "Police and customs officers seized two tonnes of cocaine hidden in a shipment of bananas, the "
                 "interior ministry said. Security forces arrested eleven suspects in coordinated raids, and a "
                 "special unit searched warehouses near the harbour. Prosecutors said the gang had smuggled drugs "
                 "through the port for years. The operation followed months of cooperation with police in Spain "
                 "and the Netherlands, and the minister praised the officers' training."),
    "economy-en": ("Central bank raises interest rates to fight inflation",
                   "The central bank raised its main interest rate by two points on Thursday, its sharpest increase "
                   "in a decade, as inflation reached 40 percent. The finance minister said the government would "
                   "support exporters and keep the budget deficit under control. Economists said the battle against "
                   "rising prices would take years, and the currency weakened against the dollar after the "
                   "announcement. Markets in Istanbul fell."),
    "education-en": ("Universities open applications for the new academic year",
                     "Universities across the country opened applications for the new academic year, with record "
                     "demand for medicine and engineering. The education minister said a new programme would train "
                     "ten thousand teachers and support students from poor families with grants. The academy of "
                     "sciences welcomed the plan, and student unions asked for more dormitories."),
    "space-en": ("Rocket launch puts weather satellite into orbit",
                 "A rocket carrying a new weather satellite lifted off on Tuesday and placed it into orbit an hour "
                 "later, the space agency said. Engineers will test its instruments for three months before it "
                 "starts sending images of storms and sea temperatures. The agency's director thanked partners in "
                 "Japan and Germany for their cooperation and said the mission's launch window had been tight."),
    "disaster-ar": ("أمطار غزيرة تغرق شوارع المدينة",
                    "شاركت فرق الدفاع المدني والإنقاذ في إجلاء عشرات الأسر بعد أن أغرقت الأمطار الغزيرة عدة أحياء، "
                    "وقال وزير الداخلية إن قوات الدفاع المدني تلقت دعما من البلديات المجاورة. وأعلنت الحكومة عن "
                    "مساعدات عاجلة للمتضررين، فيما حذرت الأرصاد الجوية من عاصفة جديدة خلال الأيام المقبلة. "
                    "وتفقد الوزير المناطق المتضررة برفقة رئيس البلدية."),
    "crime-ar": ("الشرطة تضبط شحنة مخدرات في الميناء",
                 "ضبطت قوات الأمن شحنة كبيرة من المخدرات مخبأة في حاويات فواكه بالميناء، وأعلنت وزارة الداخلية "
                 "القبض على تسعة متهمين في مداهمات متزامنة. وقال مدير الأمن إن العملية جاءت بالتنسيق مع النيابة "
                 "العامة وبدعم من إدارة الجمارك، وإن التعاون مع أجهزة الشرطة في الدول المجاورة ساعد في كشف "
                 "الشبكة. وأحيل المتهمون إلى القضاء."),
    "economy-ar": ("البنك المركزي يرفع أسعار الفائدة",
                   "رفع البنك المركزي سعر الفائدة الرئيسي بمقدار نقطتين لمواجهة التضخم الذي تجاوز 30 في المئة. "
                   "وقال وزير المالية إن الحكومة ستدعم المصدرين وتعمل على خفض عجز الموازنة، مؤكدا أن معركة "
                   "الأسعار تحتاج إلى وقت. وتراجعت العملة المحلية أمام الدولار، فيما ارتفعت أسهم المصارف في "
                   "البورصة."),
    "education-ar": ("الجامعات تفتح باب التسجيل للعام الدراسي الجديد",
                     "فتحت الجامعات الحكومية باب التسجيل للعام الدراسي الجديد وسط إقبال كبير على كليات الطب "
                     "والهندسة. وقال وزير التعليم العالي إن برنامجا جديدا سيعمل على تدريب آلاف المعلمين ودعم "
                     "الطلاب من الأسر المحتاجة بمنح دراسية، وإن الوزارة وقعت مذكرة تفاهم مع جامعات أوروبية "
                     "لتبادل الأساتذة."),
    "space-ar": ("إطلاق قمر صناعي لرصد الطقس",
                 "أطلقت وكالة الفضاء صاروخا يحمل قمرا صناعيا جديدا لرصد الطقس، ووضع القمر في مداره بعد ساعة من "
                 "الإطلاق. وقال مدير الوكالة إن المهندسين سيختبرون أجهزته ثلاثة أشهر قبل أن يبدأ إرسال صور "
                 "العواصف ودرجات حرارة البحر، شاكرا الشركاء في اليابان وألمانيا على التعاون."),
    "disaster-tr": ("Sel felaketi sahil ilçelerini vurdu",
                    "Şiddetli yağışların ardından meydana gelen selde AFAD ve itfaiye ekipleri gece boyunca "
                    "çalıştı. İçişleri Bakanı, arama kurtarma ekiplerine komşu illerden destek gönderildiğini ve "
                    "evleri zarar gören ailelere yardım yapılacağını söyledi. Meteoroloji yeni fırtınalar için "
                    "uyardı; Bakan, selden en çok etkilenen mahalleyi ziyaret etti."),
    "crime-tr": ("Limanda uyuşturucu operasyonu: 11 gözaltı",
                 "Emniyet güçleri ve gümrük muhafaza ekipleri limanda muz yüklü bir konteynerde iki ton kokain ele "
                 "geçirdi. İçişleri Bakanlığı, eş zamanlı operasyonlarda 11 şüphelinin gözaltına alındığını "
                 "açıkladı. Savcılık, çetenin yıllardır limanı kullandığını belirtti. Operasyonun İspanya ve "
                 "Hollanda polisiyle işbirliği içinde yürütüldüğü bildirildi."),
    "economy-tr": ("Merkez Bankası faizi artırdı",
                   "Merkez Bankası politika faizini iki puan artırarak enflasyonla mücadelede yeni bir adım attı. "
                   "Hazine ve Maliye Bakanı, ihracatçılara destek verileceğini ve bütçe açığının kontrol altında "
                   "tutulacağını söyledi. Ekonomistler, fiyat artışlarıyla savaşın uzun süreceğini belirtti; "
                   "Borsa İstanbul günü düşüşle kapattı."),
    "education-tr": ("Üniversitelerde yeni dönem kayıtları başladı",
                     "Üniversitelerde yeni akademik yıl için kayıtlar başladı; tıp ve mühendislik bölümlerine "
                     "ilgi rekor düzeyde. Milli Eğitim Bakanı, yeni programla on bin öğretmenin eğitileceğini ve "
                     "ihtiyaç sahibi öğrencilere burs desteği verileceğini açıkladı. Öğrenci toplulukları yurt "
                     "kapasitesinin artırılmasını istedi."),
    "space-tr": ("Yerli uydu yörüngeye yerleştirildi",
                 "Yerli imkânlarla geliştirilen gözlem uydusu, fırlatıldıktan bir saat sonra yörüngesine "
                 "yerleştirildi. Türkiye Uzay Ajansı Başkanı, mühendislerin üç ay boyunca uydunun sistemlerini test "
                 "edeceğini söyledi ve Japonya ile Almanya'daki ortaklara işbirliği için teşekkür etti."),
    "health-en-immunity": ("How the immune system fights back",
                         "The immune system is an army of cells that attack viruses. When a virus invades, troops of"
                         " white blood cells launch an offensive, and vaccines train this army to recognise the "
                         "enemy. Scientists at the academy said the body's defence is a battle fought every day, and"
                         " support from a healthy diet helps the soldiers of the immune system."),
    "tech-en-game": ("New war game tops the charts",
                "The latest military shooter sold ten million copies in a week. Players command soldiers and tanks, "
                "call in airstrikes and fight battles across a fictional war. The studio said its partnership with a"
                " Japanese publisher and a deal with a streaming company would bring the game to consoles, and an "
                "esports tournament with a training camp is planned."),
    "culture-ar-documentary": ("فيلم وثائقي عن معركة تاريخية",
               "يعرض مهرجان السينما فيلما وثائقيا عن معركة جناق قلعة التي خاضها الجيش العثماني ضد جيوش الحلفاء، "
               "ويروي الفيلم قصص الجنود والضباط في الحرب. وقال المخرج إن التعاون مع الأرشيف العسكري سمح له بعرض صور "
               "نادرة، وإن الفيلم حصل على دعم من وزارة الثقافة."),
    "sports-tr-friendly": ("Milli takım hazırlık maçında galip",
                   "A Milli Futbol Takımı, hazırlık maçında rakibini 3-0 yendi. Teknik direktör, takımın savunma ve "
                   "hücum hatlarının iyi çalıştığını, askeri disiplinle hazırlandıklarını söyledi. Kaptan, ordu gibi"
                   " taraftarın desteğiyle savaşacaklarını belirtti. Kamp sürecindeki antrenmanlar ve eğitim "
                   "programı meyvesini verdi."),
    "sports-ar-cup": ("الجيش الملكي يتأهل إلى النهائي",
                   "تأهل فريق الجيش الملكي إلى نهائي كأس العرش بعد فوزه في مباراة قوية، وقال المدرب إن اللاعبين "
                   "خاضوا معركة حقيقية وإن التدريبات في المعسكر أتت ثمارها. وأشاد رئيس النادي بدعم الجماهير والتعاون"
                   " مع الاتحاد."),
    "business-en-airline": ("Airline orders 50 new jets",
                    "The national airline signed a deal to buy fifty passenger jets from Airbus, its largest order "
                    "ever, with deliveries from 2027. The transport minister said the purchase would support tourism"
                    " and exports, and the company will train hundreds of new pilots at its flight academy. The deal"
                    " includes engines and maintenance."),
}


@pytest.mark.parametrize("name", sorted(NON_DEFENCE))
def test_no_defence_topic_on_other_news(name, vocabulary):
    title, body = NON_DEFENCE[name]
    assert topics(body, vocabulary, title) & DEFENCE_TOPICS == set()


@pytest.mark.parametrize("name", sorted(NON_DEFENCE))
def test_language_of_other_news(name, vocabulary):
    title, body = NON_DEFENCE[name]
    assert tags_of(body, vocabulary, title, kind="language")[0].value == name.split("-")[1]


def test_other_news_still_gets_language_and_countries(vocabulary):
    title, body = NON_DEFENCE["culture-en"]
    tags = tags_of(body, vocabulary, title)
    assert tags[0].value == "en"
    assert {"TR", "GR", "CY"} <= {t.value for t in tags if t.kind == "country"}


# --- vocabularies are data ---------------------------------------------------------------------------------------

@pytest.fixture
def config_copy(tmp_path):
    for name in ("countries.yaml", "places.yaml", "entities.yaml", "taxonomy.yaml"):
        shutil.copy(CONFIG / name, tmp_path / name)
    return tmp_path


def test_an_added_country_name_takes_effect(config_copy):
    text = "Anadolu'dan gelen heyet"
    assert countries(text, load_vocabulary(config_copy)) == set()
    path = config_copy / "countries.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "tr: [Türkiye, Türk,", "tr: [Anadolu, Türkiye, Türk,"), encoding="utf-8")
    assert countries(text, load_vocabulary(config_copy)) == {"TR"}


def test_an_added_topic_keyword_takes_effect(config_copy):
    text = "The new solar farm will feed the grid. The solar farm is the largest in the region."
    assert "energy" not in topics(text, load_vocabulary(config_copy))
    path = config_copy / "taxonomy.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "oil production, gas field*]", "oil production, gas field*, solar farm*]"), encoding="utf-8")
    assert "energy" in topics(text, load_vocabulary(config_copy))


def test_requires_any_gates_a_topic(config_copy):
    path = config_copy / "taxonomy.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "  energy:\n    threshold: 1.5\n", "  energy:\n    threshold: 1.5\n    requires_any: [Libya]\n"),
        encoding="utf-8")
    vocabulary = load_vocabulary(config_copy)
    assert "energy" not in topics("Crude prices rose. The refinery and the pipeline reopened.", vocabulary)
    assert "energy" in topics("Libya: crude prices rose. The refinery and the pipeline reopened.", vocabulary)


def test_default_vocabulary_follows_edits_of_the_config_dir(config_copy, monkeypatch):
    monkeypatch.setenv("MIRSAD_CONFIG_DIR", str(config_copy))
    get_settings.cache_clear()
    try:
        doc = Document(text="Anadolu'dan gelen heyet")
        assert not [t for t in classify(doc) if t.kind == "country"]
        assert default_vocabulary() is default_vocabulary()
        path = config_copy / "countries.yaml"
        time.sleep(0.01)
        path.write_text(path.read_text(encoding="utf-8").replace(
            "tr: [Türkiye, Türk,", "tr: [Anadolu, Türkiye, Türk,"), encoding="utf-8")
        assert [t.value for t in classify(doc) if t.kind == "country"] == ["TR"]
    finally:
        get_settings.cache_clear()


def test_unknown_set_in_taxonomy_is_an_error(config_copy):
    path = config_copy / "taxonomy.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace('terms: ["@culture"]', 'terms: ["@no-such-set"]'),
                    encoding="utf-8")
    with pytest.raises(ValueError, match="no-such-set"):
        load_vocabulary(config_copy)
