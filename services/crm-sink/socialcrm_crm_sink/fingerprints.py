"""Fingerprints of erased identities (pure): keyed HMAC-SHA-256, never a plain hash.

The CRM keeps, for each identity key of an erased person, a fingerprint and the time of
erasure, so that a replay of the person's older events does not bring them back. A plain
SHA-256 of ``phone:+33612345678`` is reversed by trying every French mobile number (10^9
guesses, minutes on one machine); keyed with a secret the database does not hold, the
fingerprints reveal nothing to whoever reads the database.
"""

from __future__ import annotations

import hashlib
import hmac

SCHEME = "hmac-sha256"
# Shorter keys are guessable; 16 characters of a generated secret are far beyond that.
MIN_SECRET_LENGTH = 16
# Development only (CRM_FINGERPRINT_INSECURE_LOCAL): public, hence no protection at all.
INSECURE_LOCAL_SECRET = "socialcrm-insecure-local-fingerprint-key"


def erasure_fingerprint(identity_key: str, secret: str) -> str:
    return hmac.new(secret.encode(), identity_key.encode(), hashlib.sha256).hexdigest()
