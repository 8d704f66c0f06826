"""A cheap language guess for replies: stop-word counts, no model call needed."""

from __future__ import annotations

import re

_STOPWORDS = {
    "English": {"the", "and", "is", "my", "to", "of", "it", "i", "you", "not", "with", "for"},
    "Spanish": {"el", "la", "de", "que", "y", "mi", "no", "es", "por", "con", "para", "pedido"},
    "French": {"le", "la", "de", "et", "je", "mon", "ma", "pas", "est", "pour", "avec", "commande"},
    "German": {"der", "die", "das", "und", "ich", "mein", "nicht", "ist", "mit", "für", "bitte"},
    "Portuguese": {"o", "a", "de", "que", "e", "meu", "não", "é", "com", "para", "pedido", "minha"},
    "Italian": {"il", "di", "che", "e", "mio", "non", "è", "per", "con", "ordine", "sono", "la"},
}


def detect_language(text: str) -> str:
    words = re.findall(r"[^\W\d_]+", text.lower())
    scores = {lang: sum(w in stop for w in words) for lang, stop in _STOPWORDS.items()}
    best = max(scores, key=lambda lang: scores[lang])
    return best if scores[best] > 0 else "English"
