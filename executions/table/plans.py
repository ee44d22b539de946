"""How the table's page query reads its rows: by walking the sort's index, or by sorting
the filtered set. PostgreSQL picks from its estimates, and for the filters people
combine (an agent, a status, a week) it estimates each alone as if independent; the
counters know the real number, so the table chooses here instead.

The two ways, for "one agent's completed runs this week, most expensive first":
- walk the cost index from the top and keep the rows that match. Cheap when most
  rows match; when few do, or when they sit at one end of the order (an agent whose
  runs are cheap), it reads most of the table: 709,305 rows for 20, over 2 s.
- read the rows that match and sort them (a top-N sort keeps only the page in
  memory). Its cost is the number of matches: with the covering indexes of
  migrations 0010, 0015, 0019 and 0024, led by agent, status, version, source,
  feedback or budget, carrying every sortable measure, the matches are read from the
  index alone, 3,000 in about a millisecond. But a deep page must keep every row
  before it: the middle page of one agent's 39,883 runs sorted by cost took 386 ms.
- for one agent (or version), walk the measure's index led by the agent (0028),
  checking status, time, version and source in the index: bounded by the agent's
  runs, 18 ms for that middle page.
"""

from .state import SORT_FIELDS

# Up to this many matches, sorting them beats walking a sort index whatever the
# filter: with a visit to each row, 20,000 cost ~40 ms, while a walk is unbounded
# when the matches sit at the far end of the order (one version's runs sorted by
# cost walked the cost index for 2.3 s). Past it the walk stays: a minimum on
# credits (26,756 matches) finds its costly runs at once from the top, though from
# the bottom (its last page) it reads nearly the whole index.
SORT_ANY_MAX = 20_000
# When a covering index (0010, 0015) holds every filtered column and every measure,
# the matches are read without visiting rows, about a million index entries a
# second on one core: up to this many is ~50 ms at worst.
SORT_COVERED_MAX = 150_000
# A filter no measure index holds, whose walk is unbounded: sorting its matches, each
# visited once, costs up to ~150 ms for this many, against seconds of walking.
SCHEDULE_SORT_MAX = 60_000
# The covering indexes as (the filter that leads it, the filters it holds): led by
# agent, status, version or source (each with status and time, and agent), or the
# feedback (0019) and budget (0024) partial indexes. Every one carries every
# measure, so the minimums are checked in the index too. An index helps only when
# its leading filter is applied: without it, reading the matches from it reads the
# whole index (the last 7 days sorted by duration read a million entries of the
# agent's for 77,000).
MINIMUMS = frozenset({"min_duration", "min_cost", "min_credits"})
COVERING = tuple(
    (leader, columns | MINIMUMS | {leader})
    for leader, columns in (
        ("agent", frozenset({"status", "start", "end"})),
        ("status", frozenset({"start", "end", "agent"})),
        ("version", frozenset({"status", "start", "end", "agent"})),
        ("source", frozenset({"status", "start", "end", "agent"})),
        ("feedback", frozenset({"status", "start", "end", "agent", "source"})),
        ("budget", frozenset({"status", "start", "end", "agent", "source"})),
    )
)
# The filters the agent-led measure indexes (0028) check in the index, and how many
# rows a top-N sort may keep and still be cheap (page 1 keeps 20; page 1,000 keeps
# 20,000, a full sort of the matches).
AGENT_INDEX = frozenset({"agent", "version", "status", "start", "end", "source"})
TOP_N_KEEP = 1_000


def walks_agent_index(*, applied: dict, sort: str, matches: int | None, keep: int) -> bool:
    """True to walk the measure's index led by the agent (0028) for a page that must
    pass `keep` rows in order: one agent (or one of its versions), with any of the
    filters that index holds. Its walk reads at most the agent's runs from the index
    (140,000 for the busiest); sorting the matches costs their number times the
    depth, so it wins only near the top (a top-N sort of a few thousand).
    """
    if SORT_FIELDS[sort.lstrip("-")][0] == "created_at":
        return False
    one_agent = len(applied.get("agent") or ()) == 1 or "version" in applied
    if not one_agent or set(applied) - AGENT_INDEX:
        return False
    if matches is None:
        return True
    # A top-N sort reads every match but keeps only the page: cheap for a few
    # thousand near the top; a walk from the top of 140,000 reads about 20 entries.
    few = matches <= TOP_N_KEEP or (matches <= SORT_ANY_MAX and keep <= TOP_N_KEEP)
    return not (few and sorts_filtered_set(applied=applied, sort=sort, matches=matches))


def sorts_filtered_set(*, applied: dict, sort: str, matches: int | None) -> bool:
    """True to sort the filtered rows, False to walk the sort's index (or let
    PostgreSQL choose, when the number of matches is not known).

    `matches` is how many rows the filters select, exact or an upper bound (the
    counters' count for the agent and status).
    """
    if not applied:
        return False
    if SORT_FIELDS[sort.lstrip("-")][0] == "created_at":
        # Every equality filter has an index on (workspace, filter, created_at): the
        # walk in time order meets only matching rows already.
        return False
    if matches is None:
        # Not counted yet (a search whose total comes late). A word with another
        # filter: the matches are bounded by both (PostgreSQL ANDs the word's trigram
        # index with the filter's), while a walk for them along a measure has no bound
        # (an agent's runs holding "timeout" walked the cost index for 7 s). A word
        # alone stays a walk: a common one fills the page from the top at once.
        return "q" in applied and len(applied) > 1
    if set(applied) == {"status"}:
        # exec_ws_status_<measure> (0010): the walk meets only matching rows, and a
        # deep page skips index entries rather than rows.
        return False
    if matches <= SORT_ANY_MAX:
        return True
    if "schedule" in applied and matches <= SCHEDULE_SORT_MAX:
        # No measure index holds the schedule: its walk visits rows until it has met
        # the page, and a schedule's runs sit anywhere in a measure's order (a
        # schedule's 35,576 runs by cost walked the cost index for 2.7 s of CPU).
        # Sorting them visits each once, through (workspace, schedule, created_at).
        return True
    covered = any(leader in applied and set(applied) <= cols for leader, cols in COVERING)
    return covered and matches <= SORT_COVERED_MAX
