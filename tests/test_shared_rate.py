"""The shared rate limit's arithmetic: blocks of start times booked from one schedule."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from syndicate.delivery.shared_rate import Tickets, block_size, booked_start
from syndicate.store.shared_limits import Booking

steps = st.lists(
    st.tuples(
        st.integers(0, 3),  # which process wants to send
        st.floats(0, 8),  # time since the step before, in messages' intervals (1 / rate)
        st.sampled_from([0.0, 0.0, 0.001, 0.004]),  # how late the database's answer arrives
    ),
    min_size=1,
    max_size=300,
)


def most_in_any_window(times: list[float], span: float) -> int:
    """The largest number of `times` inside any half-open window of `span` seconds."""
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while times[first] <= at - span:
            first += 1
        most = max(most, last - first + 1)
    return most


@given(
    rate=st.floats(0.5, 2_000),
    offsets=st.lists(st.floats(-1e6, 1e6), min_size=4, max_size=4),
    steps=steps,
    span=st.floats(0.001, 5),
)
@settings(max_examples=500)
# Two processes hold booked blocks, come back late together and then a third books: the case
# that a laxer rule for late start times would let through.
@example(
    rate=100.0,
    offsets=[0.0, 5.0, -3.0, 0.0],
    steps=[(0, 0.0, 0.0), (1, 0.0, 0.0), (0, 8.5, 0.0)]
    + [(0, 0.0, 0.0)] * 3
    + [(1, 0.0, 0.0)] * 4
    + [(2, 0.0, 0.0)]
    + [(2, 1.0, 0.0)] * 10,
    span=0.1,
)
def test_no_interleaving_of_bookings_exceeds_the_rate(
    rate: float, offsets: list[float], steps: list[tuple[int, float, float]], span: float
) -> None:
    """However four processes' bookings interleave, no T seconds hold over rate * T + block sends.

    Each step, one process wants to send now: it takes its next start time, or books a block
    from the shared schedule (as store.shared_limits's statement does), and sends at that time
    or now, whichever is later. A database answer that arrives late only makes sends later.
    """
    block = block_size(rate)
    processes = [Tickets(rate, block) for _ in offsets]
    next_at, database_now, now = 0.0, 0.0, 1_000.0
    sent: list[float] = []
    for process, elapsed, lag in steps:
        now += elapsed / rate
        local_now = now + offsets[process]
        start = processes[process].take(local_now)
        if start is None:
            database_now = max(database_now, now - lag)  # its clock, read `lag` s before
            begins = booked_start(next_at, database_now)
            next_at = begins + block / rate
            start = processes[process].fill(Booking(begins, database_now), local_now)
        sent.append(max(start, local_now) - offsets[process])
    most_lag = max(lag for _, _, lag in steps)
    assert most_in_any_window(sent, span) <= rate * (span + most_lag) + block + 1e-6


@given(rate=st.floats(0.5, 2_000), idle=st.floats(0, 60))
def test_start_times_left_unused_are_not_spent_late(rate: float, idle: float) -> None:
    """A process that comes back after an idle spell sends no burst of its old start times."""
    block = block_size(rate)
    tickets = Tickets(rate, block)
    first = tickets.fill(Booking(start=10.0, now=10.0), 0.0)
    assert first == 0.0
    late = 0.0 + idle
    usable = []
    while (start := tickets.take(late)) is not None:
        usable.append(start)
    assert all(start >= late - (block - 1) / rate for start in usable)


def test_blocks_are_sized_so_a_cluster_books_about_twenty_a_second() -> None:
    """A block holds a twentieth of a second of the rate, one message at least."""
    assert [block_size(rate) for rate in (0.5, 20, 21, 100, 2_800)] == [1, 1, 2, 5, 140]
