"""The official calibration codes, re-typed in torch from their published sources for the
oracle tests (read at the commits named in each module; written here, not copied)."""
