"""Text -> search terms, the same for postings and questions, in Korean and English.

Korean attaches particles to words (회사는, 회사가, 회사에서 are all "회사"), so a question and a posting
that name the same company rarely share a whitespace token. Each Hangul word is indexed as itself with
its particle removed, plus its syllable bigrams (물류센터 -> 물류, 류센, 센터), so a compound written
with or without a space, or a particle we do not list, still shares terms with the posting: the same
idea as Elasticsearch's `cjk_bigram` filter, with a particle list in place of a morphological analyser.
English words are lowercased (a possessive's "s" is a stop word). A few question words are stop words.

ANALYSER_VERSION is stored in every index: an index built with other terms would silently miss.
"""

from __future__ import annotations

import re
import unicodedata

ANALYSER_VERSION = 1

_WORD = re.compile(r"[가-힣]+|[^\W_가-힣]+", re.UNICODE)


def _words(text: str) -> list[str]:
    return text.split()


# Longest first, so 에서는 is removed whole rather than leaving 에서.
PARTICLES = sorted(
    _words(
        "은 는 이 가 을 를 의 에 에서 에게 께 와 과 도 만 로 으로 랑 이랑 하고 보다 까지 부터 처럼 에서는 "
        "에는 으로는 로는 이나 나 이라 라 이란 란 이에요 예요 입니다 인가요 인지 에요"
    ),
    key=len,
    reverse=True,
)
_PARTICLE_SET = frozenset(PARTICLES)

STOP_WORDS = frozenset(
    _words(
        "a an s t the of in at on for to and or is are be what which who where how when does do did can "
        "i me my you your it its this that there with from by as job jobs posting role position "
        "무엇 무엇인가요 어디 어디인가요 얼마 얼마인가요 어떤 어떻게 있나요 인가요 알려주세요 뭐예요 뭔가요 "
        "이 그 저 것 포지션 공고 채용"
    )
)


_PARTICLE_LENGTHS = sorted({len(p) for p in PARTICLES}, reverse=True)


def _strip_particle(word: str) -> str:
    for (
        n
    ) in _PARTICLE_LENGTHS:  # a set lookup per length: indexing 100,000 postings calls this millions of times
        if len(word) > n and word[-n:] in _PARTICLE_SET:
            return word[:-n]
    return word


def terms(text: str) -> list[str]:
    """The search terms of `text`, in order, repeats kept (BM25 counts them)."""
    out: list[str] = []
    for word in _WORD.findall(unicodedata.normalize("NFKC", text).lower()):
        if "가" <= word[0] <= "힣":
            stem = _strip_particle(word)
            if word in _PARTICLE_SET or stem in STOP_WORDS or word in STOP_WORDS:  # 은 in "Fashion은"
                continue
            out.append(stem)
            if len(stem) > 2:
                out.extend(stem[i : i + 2] for i in range(len(stem) - 1))
        elif word not in STOP_WORDS:
            out.append(word)
    return out


def query_terms(text: str, limit: int = 64) -> list[str]:
    """The distinct terms of a question, first `limit` of them (a longer question adds noise, not recall)."""
    return list(dict.fromkeys(terms(text)))[:limit]
