import pytest

from compressors.text.extract import (
    clean_sentence,
    extract_entities,
    extract_keywords,
    extract_persons,
    is_filler,
    split_sentences,
)
from compressors.text.speakers import rewrite_first_person, to_third_person


def test_split_sentences_keeps_abbreviations_and_decimals():
    text = "Hi Mel! I saw Dr. Smith yesterday. We run Python 3.12 now, e.g. in prod... Really?\n- first item\n2. second"
    assert split_sentences(text) == [
        "Hi Mel!",
        "I saw Dr. Smith yesterday.",
        "We run Python 3.12 now, e.g. in prod...",
        "Really?",
        "first item",
        "second",
    ]


def test_split_sentences_ends_at_a_lone_pronoun():
    assert split_sentences("She is taller than I. Then we left.") == ["She is taller than I.", "Then we left."]


def test_split_sentences_empty():
    assert split_sentences("") == []
    assert split_sentences("  \n \n") == []


@pytest.mark.parametrize(
    "sentence",
    [
        "Hi Caroline!",
        "Hey Mel, how are you?",
        "Thanks so much!",
        "Thank you!",
        "ok",
        "Sounds good!",
        "haha",
        "Hahaha lol",
        "lol 😂",
        "😊😊",
        "Bye!",
        "Take care, Mel!",
        "That's great!",
        "Wow, that's amazing!",
        "null",
        "{}",
        "[]",
        "OK",
        "success",
        "",
        "...",
    ],
)
def test_filler(sentence):
    assert is_filler(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "I went to the park.",
        "Thanks for the recipe, it was delicious.",
        "lollipops are great",
        "I know Python",
        "Hey, I adopted a dog named Max.",
        "That's great news about your promotion",
        "The deploy is done on staging",
    ],
)
def test_not_filler(sentence):
    assert not is_filler(sentence)


def test_clean_sentence_strips_interjection_emoji_and_laughter():
    assert clean_sentence("Hey Mel, I went to the park haha 😂") == "I went to the park"
    assert clean_sentence("Ok thanks, my sister came over.") == "My sister came over."
    assert clean_sentence("Wow, that's great, I love it lol") == "I love it"
    assert clean_sentence("Well-known places are busy.") == "Well-known places are busy."


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("I went to the park.", "Caroline went to the park."),
        ("I'm happy and I've been busy.", "Caroline is happy and Caroline has been busy."),
        ("I am tired, I have a cold.", "Caroline is tired, Caroline has a cold."),
        ("I was there, I'll go and I'd stay.", "Caroline was there, Caroline will go and Caroline would stay."),
        ("I love my dog.", "Caroline loves Caroline's dog."),
        ("I really enjoy hiking.", "Caroline really enjoys hiking."),
        ("I don't know.", "Caroline doesn't know."),
        ("Tell me about it, I did it by myself.", "Tell Caroline about it, Caroline did it by Caroline."),
        ("A friend of mine came, that's mine.", "A friend of Caroline's came, that's Caroline's."),
        ("My sister called.", "Caroline's sister called."),
        ("I’m fine", "Caroline is fine"),
        ("Mel and I went.", "Mel and Caroline went."),
    ],
)
def test_to_third_person(sentence, expected):
    assert to_third_person(sentence, "Caroline") == expected


@pytest.mark.parametrize(
    "sentence",
    [
        "We visited a gold mine in Idaho.",
        "You should see the mining museum and iMessage.",
        "Meet me... no: meet them at the Memorial.",
        "World War I was long.",
        "The I/O scheduler is slow.",
        "Oh my god, we won!",
        "Myopia and Imagine and Ideas and IMAX.",
    ],
)
def test_to_third_person_leaves_other_words_alone(sentence):
    out = to_third_person(sentence, "Bo")
    # only a standalone "me" may change; words merely containing the letters never do
    assert out == sentence.replace(" me...", " Bo...")


def test_rewrite_first_person_reports_subject():
    assert rewrite_first_person("I adopted a cat.", "Ann") == ("Ann adopted a cat.", True)
    assert rewrite_first_person("My cat is black.", "Ann") == ("Ann's cat is black.", True)
    assert rewrite_first_person("Tell me more.", "Ann") == ("Tell Ann more.", False)
    assert rewrite_first_person("The weather was nice.", "Ann") == ("The weather was nice.", False)


def test_speaker_name_is_not_rewritten_again():
    assert to_third_person("I like my tea.", "My Assistant") == "My Assistant likes My Assistant's tea."


def test_extract_keywords():
    text = "Caroline went to the LGBTQ support group. The support group was inspiring for Caroline."
    assert extract_keywords(text) == ["caroline", "support", "group", "lgbtq", "inspiring"]
    assert extract_keywords(text, limit=2) == ["caroline", "support"]
    assert extract_keywords("We deployed Python 3.12 on the Kubernetes cluster in 2023.") == [
        "kubernetes",
        "python",
        "deployed",
        "3.12",
        "2023",
        "cluster",
    ]


def test_extract_keywords_empty():
    assert extract_keywords("") == []
    assert extract_keywords("and the of it") == []


def test_extract_persons():
    text = "Caroline said: Hey Mel, my sister Anna and Jon Snow saw the Golden Gate Bridge in Paris on Monday."
    assert extract_persons(text, ["Caroline", "Melanie"]) == ["Caroline", "Mel", "Anna", "Jon Snow"]


def test_extract_persons_skips_sentence_start_and_common_words():
    assert extract_persons("Yesterday was fun. Python is great. We went in May.") == []
    assert extract_persons("We went to New York with Bob.") == ["Bob"]


def test_extract_entities():
    text = (
        'Caroline visited the Golden Gate Bridge and Bank of America. We deployed Python 3.12 and v2.1 on port '
        "8080 and localhost:5432, edited /etc/nginx/nginx.conf and src/app/main.py, see https://example.com/x?y=1. "
        'She said "hello world". It took 3.5 hours and cost $40.'
    )
    entities = extract_entities(text)
    for expected in [
        "Golden Gate Bridge",
        "Bank of America",
        "Python 3.12",
        "v2.1",
        "port 8080",
        "localhost:5432",
        "/etc/nginx/nginx.conf",
        "src/app/main.py",
        "https://example.com/x?y=1",
        "hello world",
        "3.5 hours",
        "$40",
    ]:
        assert expected in entities
    assert "Caroline" not in entities  # single capitalised words are persons, not entities


def test_extract_entities_plain_chat():
    assert extract_entities("Mel and Caroline went to the park.") == []
