"""What a leaked credential looks like, for scanning configuration files and process logs."""

from __future__ import annotations

import math
import re
from collections import Counter

# Provider formats a credential scanner would flag (gitleaks / detect-secrets rules).
PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "API key": re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b"),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\."),
    "credentials in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s:@]+@"),
}
SECRET_KEY = re.compile(
    r"(password|passwd|secret|token|api[_-]?key|access[_-]?key|credential)", re.I
)


def entropy(text: str) -> float:
    """Shannon entropy in bits per character: random keys score above ~4, words below."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def looks_random(value: str) -> bool:
    """A long token of mixed letters and digits with a key's entropy, not a digest pin."""
    token = value.strip()
    return (
        len(token) >= 32
        and re.fullmatch(r"[A-Za-z0-9+/=_-]+", token) is not None
        and bool(re.search(r"\d", token))
        and bool(re.search(r"[A-Za-z]", token))
        and entropy(token) > 4.0
    )


def findings(text: str) -> list[str]:
    """Each secret-looking thing in ``text``, named by kind."""
    return [
        f"{kind}: {match.group(0)[:12]}..."
        for kind, rule in PATTERNS.items()
        for match in rule.finditer(text)
    ]
