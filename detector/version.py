"""Version of the detection logic, carried in every alert event."""

DETECTOR_VERSION = "0.1.0"
