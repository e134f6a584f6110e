from datetime import UTC, datetime, timedelta, timezone

import pytest

from compressors.text.dates import resolve_relative_dates

MONDAY = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)  # Monday 8 May 2023


def day(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected", "when"),
    [
        ("I went yesterday", "I went on 7 May 2023", day(2023, 5, 7)),
        ("Yesterday I went to the park.", "On 7 May 2023 I went to the park.", day(2023, 5, 7)),
        ("Yesterday was fun.", "7 May 2023 was fun.", day(2023, 5, 7)),
        ("Today is my birthday", "8 May 2023 is my birthday", day(2023, 5, 8)),
        ("I finished it today.", "I finished it on 8 May 2023.", day(2023, 5, 8)),
        ("See you tomorrow", "See you on 9 May 2023", day(2023, 5, 9)),
        ("I'm going out tonight", "I'm going out on the night of 8 May 2023", day(2023, 5, 8)),
        ("I ran this morning", "I ran on the morning of 8 May 2023", day(2023, 5, 8)),
        ("We met this afternoon", "We met on the afternoon of 8 May 2023", day(2023, 5, 8)),
        ("I cooked yesterday evening", "I cooked on the evening of 7 May 2023", day(2023, 5, 7)),
        ("I went out last night", "I went out on the night of 7 May 2023", day(2023, 5, 7)),
        ("I baked the day before yesterday", "I baked on 6 May 2023", day(2023, 5, 6)),
        ("We leave the day after tomorrow", "We leave on 10 May 2023", day(2023, 5, 10)),
        ("Since yesterday it rains", "Since 7 May 2023 it rains", day(2023, 5, 7)),
        ("yesterday's game", "7 May 2023's game", day(2023, 5, 7)),
        ("Let's make tomorrow count", "Let's make 9 May 2023 count", day(2023, 5, 9)),
        ("I'll come over tomorrow", "I'll come over on 9 May 2023", day(2023, 5, 9)),
    ],
)
def test_days(text, expected, when):
    assert resolve_relative_dates(text, MONDAY) == (expected, when)


@pytest.mark.parametrize(
    ("text", "expected", "when"),
    [
        ("Last Friday I painted", "On 5 May 2023 I painted", day(2023, 5, 5)),
        ("I called him last Monday", "I called him on 1 May 2023", day(2023, 5, 1)),
        ("I'll see you this Friday", "I'll see you on 12 May 2023", day(2023, 5, 12)),
        ("I'll see you next Friday", "I'll see you on 19 May 2023", day(2023, 5, 19)),
        ("I'll see you this coming Monday", "I'll see you on 15 May 2023", day(2023, 5, 15)),
        ("It was this past Sunday", "It was on 7 May 2023", day(2023, 5, 7)),
    ],
)
def test_weekdays(text, expected, when):
    assert resolve_relative_dates(text, MONDAY) == (expected, when)


@pytest.mark.parametrize(
    ("text", "expected", "when"),
    [
        ("I was busy last week", "I was busy the week of 1 May 2023", day(2023, 5, 1)),
        ("Last week I went", "The week of 1 May 2023 I went", day(2023, 5, 1)),
        ("I'm slammed this week", "I'm slammed the week of 8 May 2023", day(2023, 5, 8)),
        ("We ship next week", "We ship the week of 15 May 2023", day(2023, 5, 15)),
        ("I hiked last weekend", "I hiked the weekend of 6 May 2023", day(2023, 5, 6)),
        ("I'll hike this weekend", "I'll hike the weekend of 13 May 2023", day(2023, 5, 13)),
        ("I moved last month", "I moved in April 2023", day(2023, 4, 1)),
        ("It opens next month", "It opens in June 2023", day(2023, 6, 1)),
        ("I graduated last year", "I graduated in 2022", day(2022, 1, 1)),
        ("This year was hard", "2023 was hard", day(2023, 1, 1)),
        ("since last year", "since 2022", day(2022, 1, 1)),
        ("I started earlier this week", "I started earlier in the week of 8 May 2023", day(2023, 5, 8)),
    ],
)
def test_periods(text, expected, when):
    assert resolve_relative_dates(text, MONDAY) == (expected, when)


@pytest.mark.parametrize(
    ("text", "expected", "when"),
    [
        ("I went 3 days ago", "I went on 5 May 2023", day(2023, 5, 5)),
        ("I went two days ago", "I went on 6 May 2023", day(2023, 5, 6)),
        ("I went a couple of days ago", "I went on 6 May 2023", day(2023, 5, 6)),
        ("I went a few days ago", "I went around 5 May 2023", day(2023, 5, 5)),
        ("I went two weeks ago", "I went the week of 24 April 2023", day(2023, 4, 24)),
        ("I went a week ago", "I went the week of 1 May 2023", day(2023, 5, 1)),
        ("I quit a month ago", "I quit in April 2023", day(2023, 4, 1)),
        ("I quit 3 months ago", "I quit in February 2023", day(2023, 2, 1)),
        ("We married ten years ago", "We married in 2013", day(2013, 1, 1)),
        ("I'll be back in 3 days", "I'll be back on 11 May 2023", day(2023, 5, 11)),
        ("I'm leaving in two weeks", "I'm leaving in the week of 22 May 2023", day(2023, 5, 22)),
        ("I'm leaving in a few days", "I'm leaving around 11 May 2023", day(2023, 5, 11)),
        ("I'm leaving two weeks from now", "I'm leaving the week of 22 May 2023", day(2023, 5, 22)),
        ("I'll get it done in 3 days", "I'll get it done on 11 May 2023", day(2023, 5, 11)),
        ("It's scheduled to open in two weeks", "It's scheduled to open in the week of 22 May 2023", day(2023, 5, 22)),
    ],
)
def test_offsets(text, expected, when):
    assert resolve_relative_dates(text, MONDAY) == (expected, when)


@pytest.mark.parametrize(
    "text",
    [
        "I went recently",
        "Mayday! yesterdays news",
        "I spent a day there",
        "the last week of June was hot",
        "Every next month is the same",
        "It took two weeks to finish",
        "Rome wasn't built in a day",
        "We haven't talked in a few weeks!",
        "I finished the course in two weeks.",
        "We walked the trail in two days.",
        "the other day we talked",
        "",
    ],
)
def test_left_alone(text):
    assert resolve_relative_dates(text, MONDAY) == (text, None)


def test_case_insensitive():
    assert resolve_relative_dates("I did it YESTERDAY", MONDAY) == ("I did it on 7 May 2023", day(2023, 5, 7))
    assert resolve_relative_dates("LAST WEEK was odd", MONDAY)[1] == day(2023, 5, 1)


def test_first_expression_is_the_event_time():
    text, when = resolve_relative_dates("Yesterday I booked a trip for next month.", MONDAY)
    assert text == "On 7 May 2023 I booked a trip for June 2023."
    assert when == day(2023, 5, 7)


def test_month_and_year_boundaries():
    new_year = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)  # a Monday
    assert resolve_relative_dates("I went yesterday", new_year) == ("I went on 31 December 2023", day(2023, 12, 31))
    assert resolve_relative_dates("I moved last month", new_year)[0] == "I moved in December 2023"
    assert resolve_relative_dates("last Sunday", new_year)[0] == "on 31 December 2023"
    march = datetime(2023, 3, 31, tzinfo=UTC)
    assert resolve_relative_dates("a month ago", march)[0] == "in February 2023"


def test_sunday_reference_weeks_start_on_monday():
    sunday = datetime(2023, 5, 14, 20, 0, tzinfo=UTC)
    assert resolve_relative_dates("this week", sunday)[0] == "the week of 8 May 2023"
    assert resolve_relative_dates("last weekend", sunday)[0] == "the weekend of 6 May 2023"
    assert resolve_relative_dates("this weekend", sunday)[0] == "the weekend of 13 May 2023"


def test_keeps_reference_timezone():
    tz = timezone(timedelta(hours=-7))
    _, when = resolve_relative_dates("yesterday", datetime(2023, 5, 8, 1, 0, tzinfo=tz))
    assert when == datetime(2023, 5, 7, tzinfo=tz)
    _, naive = resolve_relative_dates("yesterday", datetime(2023, 5, 8, 1, 0))
    assert naive == datetime(2023, 5, 7)
