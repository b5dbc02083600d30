from appliance.gate import Gate


def test_hysteresis_opens_high_and_closes_low():
    gate = Gate(open_threshold=0.6, close_threshold=0.4, time_constant_s=0.0)
    assert gate.update(0.0, 0.5) is False  # between the thresholds: stays closed
    assert gate.update(0.1, 0.7) is True
    assert gate.update(0.2, 0.5) is True  # between the thresholds: stays open
    assert gate.update(0.3, 0.39) is False


def test_smoothing_ignores_a_single_glitch():
    gate = Gate(0.6, 0.4, time_constant_s=0.5)
    t = 0.0
    for _ in range(60):  # two seconds of confident push-ups at 30 fps
        gate.update(t, 0.95)
        t += 1 / 30
    assert gate.is_open
    assert gate.update(t, 0.0) is True  # one bad frame does not close it
    for _ in range(60):
        t += 1 / 30
        gate.update(t, 0.0)
    assert not gate.is_open


def test_the_first_output_alone_does_not_open_the_gate():
    """A window with almost no history (the person just appeared) is not evidence yet."""
    gate = Gate(0.25, 0.1, time_constant_s=0.3)
    assert gate.update(0.0, 0.96) is False
    assert gate.update(0.033, 0.0) is False
    t = 0.033
    while t < 0.3:  # a steady run of confident outputs opens it within about 0.1 s
        t += 0.033
        gate.update(t, 0.96)
    assert gate.is_open


def test_smoothing_is_in_seconds_not_frames():
    fast, slow = Gate(0.6, 0.4, 1.0), Gate(0.6, 0.4, 1.0)
    fast.update(0.0, 0.0)
    slow.update(0.0, 0.0)
    for i in range(1, 31):
        fast.update(i / 30, 1.0)
    for i in range(1, 11):
        slow.update(i / 10, 1.0)
    assert abs(fast.smoothed - slow.smoothed) < 1e-6


def test_skipped_recognition_keeps_state():
    gate = Gate(0.6, 0.4, 0.0)
    gate.update(0.0, 0.9)
    assert gate.update(0.1, None) is True
    assert gate.update(0.2, float("nan")) is True
