"""The baseline store: files of reviewed metrics, their keys and bands. No pytest import."""
