"""Subject-level splits: the official HAPT split with validation subjects, and group k-fold."""

from __future__ import annotations

import numpy as np

from har.errors import DataError


def official_split(subjects: list[int] | np.ndarray, test_subjects: list[int], n_val: int,
                   seed: int) -> dict[str, list[int]]:
    """Fixed test subjects (those of ``test_subjects`` the data has, at least one); ``n_val``
    validation subjects drawn (seeded) from the rest."""
    present = sorted(set(int(s) for s in subjects))
    test = [s for s in present if s in set(test_subjects)]
    if not test:
        raise DataError(f"split.test_subjects {list(test_subjects)}: none of them is in the data "
                        f"(subjects with windows: {present}); list some of those")
    pool = [s for s in present if s not in set(test_subjects)]
    if len(pool) <= n_val:
        raise DataError(f"split: {len(pool)} training subjects cannot give {n_val} validation "
                        "subjects (split.n_val_subjects) and keep some for training")
    rng = np.random.default_rng(seed)
    val = sorted(int(s) for s in rng.choice(pool, size=n_val, replace=False))
    train = [s for s in pool if s not in val]
    return {"train": train, "val": val, "test": test}


def group_kfold(subjects: list[int] | np.ndarray, k: int, seed: int) -> list[dict[str, list[int]]]:
    """Subject-group k-fold: every subject is a test subject in exactly one fold."""
    present = sorted(set(int(s) for s in subjects))
    if k < 2:
        raise DataError(f"split.cv_folds={k}: need at least 2 folds")
    if k > len(present):
        raise DataError(f"split.cv_folds={k} exceeds the {len(present)} subjects present")
    order = np.random.default_rng(seed).permutation(present)
    folds = np.array_split(order, k)
    return [{"train": sorted(int(s) for s in order if s not in set(f)),
             "test": sorted(int(s) for s in f)} for f in folds]


def check_no_leak(splits: dict[str, list[int]]) -> None:
    """DataError naming the subject and both splits if any subject sits in two splits."""
    seen: dict[int, str] = {}
    for name, members in splits.items():
        for s in members:
            if s in seen:
                raise DataError(f"split: subject {s} is in both {seen[s]!r} and {name!r}")
            seen[s] = name
