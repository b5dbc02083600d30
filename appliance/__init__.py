"""Pushup-counter appliance: camera -> keypoints -> gated rep counter -> OLED, buzzer, button."""

__version__ = "0.1.0"
