"""Answer ids: unique, opaque, at most 64 characters, and verifiable only under the key that signed them."""
import base64
import hmac
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from serving import ids

KEY = bytes(range(32))
TAG = ids.version_tag("20261201T120000Z-0a1b2c3d")


def issue(signer, **overrides):
    """An id with plain defaults."""
    fields = {"model_index": 1, "label_index": 3, "version": TAG, "now": 1_790_000_000.123, **overrides}
    return signer.issue(**fields)


def test_an_id_is_short_url_safe_and_unique():
    signer = ids.Signer(KEY)
    issued = {issue(signer) for _ in range(10_000)}
    assert len(issued) == 10_000
    alphabet = set(string.ascii_letters + string.digits + "-_")
    assert all(len(i) == ids.ID_LENGTH <= 64 and set(i) <= alphabet for i in issued)


def test_a_verified_id_says_when_which_model_version_and_verdict():
    signer = ids.Signer(KEY)
    found = signer.verify(issue(signer))
    assert (found.time, found.model_index, found.label_index, found.version_tag) == (1_790_000_000.123, 1, 3, TAG)


def test_another_key_or_any_changed_character_is_refused():
    signer, other = ids.Signer(KEY), ids.Signer(bytes(32))
    answer_id = issue(signer)
    assert other.verify(answer_id) is None
    for position in range(len(answer_id)):
        changed = answer_id[:position] + ("A" if answer_id[position] != "A" else "B") + answer_id[position + 1:]
        assert signer.verify(changed) is None, position


def test_only_the_spelling_issued_is_accepted():
    """The last character's 2 spare bits change no byte; a spelling with them set is still refused."""
    signer = ids.Signer(KEY)
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    for _ in range(50):
        answer_id = issue(signer)
        value = alphabet.index(answer_id[-1])
        assert value & 0b11 == 0
        for spare in (1, 2, 3):
            assert signer.verify(answer_id[:-1] + alphabet[value | spare]) is None
        assert signer.verify(answer_id) is not None


@given(st.one_of(st.text(max_size=80), st.integers(), st.none(), st.lists(st.text())))
def test_anything_else_is_refused_without_raising(value):
    assert ids.Signer(KEY).verify(value) is None


@pytest.mark.parametrize("share", [0.0, 0.1, 0.5, 1.0])
def test_sampling_by_the_id_keeps_about_the_share_asked_and_is_the_same_every_time(share):
    signer = ids.Signer(KEY)
    issued = [issue(signer) for _ in range(20_000)]
    kept = [i for i in issued if ids.sampled(i, share)]
    assert abs(len(kept) / len(issued) - share) < 0.015
    assert kept == [i for i in issued if ids.sampled(i, share)]


def test_the_mac_is_hmac_sha256_of_the_body_under_the_key():
    """The padded key's hashes are taken once (`Signer.mac`); the MAC is still the standard one."""
    for key in (KEY, bytes(100), b"k"):
        signer = ids.Signer(key)
        raw = base64.urlsafe_b64decode(issue(signer) + "=")
        body, mac = raw[:ids.BODY.size], raw[ids.BODY.size:]
        assert mac == hmac.digest(key, body, "sha256")[:ids.MAC_BYTES]


def test_ids_issued_together_are_each_what_issue_gives_and_verify():
    signer = ids.Signer(KEY)
    labels = [0, 3, 3, 1, 0] * 200
    issued = signer.issue_many(model_index=1, label_indices=labels, version=TAG, now=1_790_000_000.123)
    assert len(set(issued)) == len(labels)
    found = [signer.verify(answer_id) for answer_id in issued]
    assert [(f.time, f.model_index, f.label_index, f.version_tag) for f in found] == [
        (1_790_000_000.123, 1, label, TAG) for label in labels]
    assert signer.issue_many(model_index=1, label_indices=[], version=TAG, now=0.0) == []


# --- A regressor's ids: the number answered, signed --------------------------------------------

def test_a_regressor_id_carries_its_number_and_verifies_only_unaltered():
    signer = ids.Signer(KEY)
    issued = signer.issue_values(model_index=2, values=[6.64, 1.0, 6.64], version=TAG, now=1_790_000_000.5)
    assert len(set(issued)) == 3 and all(len(i) == ids.VALUE_ID_LENGTH <= 64 for i in issued)
    found = signer.verify(issued[0])
    assert (found.value, found.model_index, found.label_index, found.version_tag) == (6.64, 2, None, TAG)
    assert found.time == pytest.approx(1_790_000_000.5, abs=0.001)
    assert ids.Signer(bytes(32)).verify(issued[0]) is None  # another key
    for at in range(len(issued[0])):  # any one character changed
        changed = issued[0][:at] + ("A" if issued[0][at] != "A" else "B") + issued[0][at + 1:]
        assert signer.verify(changed) is None, at


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_regressor_id_keeps_any_finite_number_exactly(value):
    signer = ids.Signer(KEY)
    (issued,) = signer.issue_values(model_index=2, values=[value], version=TAG, now=1_790_000_000.0)
    assert signer.verify(issued).value == value


def test_sampling_decides_on_both_kinds_of_id_alike():
    signer = ids.Signer(KEY)
    labels = signer.issue_many(model_index=0, label_indices=[0] * 2000, version=TAG, now=1.0)
    values = signer.issue_values(model_index=2, values=[5.0] * 2000, version=TAG, now=1.0)
    for issued in (labels, values):
        assert 800 < sum(ids.sampled(i, 0.5) for i in issued) < 1200
        assert all(ids.sampled(i, 1.0) for i in issued) and not any(ids.sampled(i, 0.0) for i in issued)
