from ensemble.guard import TimeGuard


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_guard_steps_down_when_the_projection_overruns_and_not_otherwise():
    clock = FakeClock()
    levels = []
    cost = {0: 10.0, 1: 4.0, 2: 1.0}

    def annotate(path):
        clock.now += cost[guard.level]
        return "authentic"

    guard = TimeGuard(annotate, budget_s=300, n_images=50, set_level=levels.append, n_levels=3, warmup=3, clock=clock)
    for i in range(50):
        guard(f"{i}.png")
    # level 0 (10 s/img) would need 500 s; level 1 (4 s) still ~200+ s with the warm-up spent; level 2 fits
    assert levels[0] == 1
    assert clock.now <= 300


def test_guard_keeps_full_quality_when_there_is_time():
    clock = FakeClock()
    levels = []

    def annotate(path):
        clock.now += 1.0
        return "authentic"

    guard = TimeGuard(annotate, budget_s=1000, n_images=100, set_level=levels.append, n_levels=3, clock=clock)
    for i in range(100):
        guard(i)
    assert levels == [] and guard.level == 0
