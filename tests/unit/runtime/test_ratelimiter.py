from hypothesis import given
from hypothesis import strategies as st

from jangar.runtime.ratelimiter import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    ItemFastSlowRateLimiter,
    MaxOfRateLimiter,
    WithMaxWaitRateLimiter,
    default_controller_rate_limiter,
)
from jangar.runtime.testing import FakeClock


def test_exponential_doubles_per_item_and_caps() -> None:
    rl = ItemExponentialFailureRateLimiter[str](0.005, 1000.0)
    delays = [rl.when("a") for _ in range(25)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    # 0.005 * 2**17 = 655.36 < 1000 and 0.005 * 2**18 > 1000: the 19th failure hits the cap.
    assert delays[17] < 1000.0
    assert delays[18:] == [1000.0] * 7
    assert rl.num_requeues("a") == 25
    assert rl.when("b") == 0.005  # independent per item
    rl.forget("a")
    assert rl.num_requeues("a") == 0
    assert rl.when("a") == 0.005


@given(st.integers(min_value=0, max_value=3000))
def test_exponential_never_exceeds_cap_or_overflows(n: int) -> None:
    rl = ItemExponentialFailureRateLimiter[int](0.001, 30.0)
    rl._failures[1] = n
    assert 0.001 <= rl.when(1) <= 30.0


def test_bucket_allows_burst_then_paces_at_qps() -> None:
    clock = FakeClock()
    rl = BucketRateLimiter[str](qps=10.0, burst=100, clock=clock)
    assert [rl.when("x") for _ in range(100)] == [0.0] * 100
    # Now in debt: the n-th extra reservation waits n/qps.
    assert abs(rl.when("x") - 0.1) < 1e-9
    assert abs(rl.when("y") - 0.2) < 1e-9
    clock.advance(0.2)  # repays two tokens
    assert abs(rl.when("z") - 0.1) < 1e-9
    clock.advance(1000)  # refill caps at burst
    assert [rl.when("x") for _ in range(100)] == [0.0] * 100
    assert rl.when("x") > 0


def test_max_of_takes_longest_and_consumes_bucket_tokens() -> None:
    clock = FakeClock()
    bucket = BucketRateLimiter[str](qps=1.0, burst=1, clock=clock)
    expo = ItemExponentialFailureRateLimiter[str](0.5, 100.0)
    rl = MaxOfRateLimiter[str](expo, bucket)
    assert rl.when("a") == 0.5  # bucket had a token; exponential wins
    assert rl.when("b") == 1.0  # bucket in debt by one token at 1 qps
    assert rl.num_requeues("a") == 1
    rl.forget("a")
    assert rl.num_requeues("a") == 0


def test_default_controller_limiter_matches_controller_runtime() -> None:
    rl = default_controller_rate_limiter(FakeClock())
    assert rl.when("k") == 0.005
    assert rl.when("k") == 0.01


def test_fast_slow_and_max_wait() -> None:
    fs = ItemFastSlowRateLimiter[str](0.1, 5.0, 2)
    assert [fs.when("a") for _ in range(4)] == [0.1, 0.1, 5.0, 5.0]
    capped = WithMaxWaitRateLimiter[str](ItemExponentialFailureRateLimiter[str](1.0, 100.0), 3.0)
    assert [capped.when("a") for _ in range(4)] == [1.0, 2.0, 3.0, 3.0]
