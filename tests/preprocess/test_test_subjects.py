"""split.test_subjects is configuration, checked against the subjects the data has."""

from __future__ import annotations

import pytest

from har.errors import DataError
from har.preprocess.splits import official_split


def test_test_subjects_are_those_of_the_list_the_data_has() -> None:
    s = official_split([11, 12, 13, 14, 15], [2, 4, 14], n_val=1, seed=0)
    assert s["test"] == [14] and len(s["val"]) == 1 and len(s["train"]) == 3


def test_no_test_subject_in_the_data_names_the_key() -> None:
    # HAPT's official test subjects against recordings of subjects 31..36
    with pytest.raises(DataError, match=r"split.test_subjects \[2, 4, 9\]: none of them is in the data "
                                        r"\(subjects with windows: \[31, 32, 33, 34, 35, 36\]\)"):
        official_split(list(range(31, 37)), [2, 4, 9], n_val=1, seed=0)
