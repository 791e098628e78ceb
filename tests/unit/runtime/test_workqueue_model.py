"""Model-based test: the work queue against a small reference model of client-go's queue."""

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from jangar.runtime.workqueue import LOW_PRIORITY, WorkQueue

KEYS = st.sampled_from(["a", "b", "c", "d"])
PRIORITIES = st.sampled_from([0, LOW_PRIORITY, 10])


class QueueModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.q: WorkQueue[str] = WorkQueue()
        self.ready: dict[str, tuple[int, int]] = {}  # key -> (priority, seq)
        self.dirty: dict[str, int] = {}
        self.processing: set[str] = set()
        self.seq = 0

    def _enqueue(self, key: str, priority: int) -> None:
        self.seq += 1
        self.ready[key] = (priority, self.seq)

    @rule(key=KEYS, priority=PRIORITIES)
    def add(self, key: str, priority: int) -> None:
        self.q.add(key, priority)
        if key in self.dirty:
            if priority > self.dirty[key]:
                self.dirty[key] = priority
                if key in self.ready:
                    self._enqueue(key, priority)
            return
        self.dirty[key] = priority
        if key not in self.processing:
            self._enqueue(key, priority)

    @rule()
    def get(self) -> None:
        got = self.q.get_nowait()
        if not self.ready:
            assert got is None
            return
        expected = min(self.ready, key=lambda k: (-self.ready[k][0], self.ready[k][1]))
        assert got == expected
        del self.ready[expected]
        del self.dirty[expected]
        self.processing.add(expected)

    @precondition(lambda self: bool(self.processing))
    @rule(data=st.data())
    def done(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.processing)))
        self.q.done(key)
        self.processing.discard(key)
        if key in self.dirty:
            self._enqueue(key, self.dirty[key])

    @invariant()
    def matches_model(self) -> None:
        assert len(self.q) == len(self.ready)
        assert self.q.processing == len(self.processing)
        for key in "abcd":
            assert self.q.is_processing(key) == (key in self.processing)


QueueModel.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_queue_matches_model = QueueModel.TestCase
