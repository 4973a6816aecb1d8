"""Postings -> question/answer training samples.

Every sample has the same shape, so at generation time the model can be handed everything up to
[ANSWER] (see `build_prompt`) and asked to continue:

    [DOC]
    직무: 백엔드 개발자
    회사: ...
    (the posting)
    [/DOC]
    [QUESTION] 이 포지션의 자격 요건은 무엇인가요? [/QUESTION]
    [ANSWER]
    자격 요건:
    - ...
    [/ANSWER]

Answers are assembled only from the posting's own fields (and sentences copied from its content): a
question kind whose fields are absent is skipped rather than answered with something made up. The
language follows the posting (Korean when it is written in Hangul, English otherwise). Which phrasing
a question and answer get is drawn from a generator seeded by (seed, posting id): the same seed gives
the same samples whatever the order or subset of postings, another seed gives other phrasings.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from jai.data.postings import Posting
from jai.prompt import (
    ANSWER,
    ANSWER_END,
    DOC,
    DOC_END,
    MARKERS,
    QUESTION,
    QUESTION_END,
    build_prompt,
    format_sample,
)

__all__ = [
    "ANSWER",
    "ANSWER_END",
    "DOC",
    "DOC_END",
    "ECHO_QUESTIONS",
    "FIELD_KINDS",
    "KINDS",
    "LONG_KINDS",
    "MARKERS",
    "QUESTION",
    "QUESTION_END",
    "Sample",
    "build_prompt",
    "drill_samples",
    "echo_samples",
    "field_value",
    "format_sample",
    "make_samples",
    "render_doc",
    "render_header",
    "samples_for",
]


@dataclass(frozen=True)
class Sample:
    posting_id: str
    kind: str
    lang: str
    question: str
    doc: str
    answer: str

    @property
    def text(self) -> str:
        return format_sample(self.question, self.doc, self.answer)


# --- labels and phrasings ----------------------------------------------------------------------------

LABELS = {
    "ko": {
        "title": "직무",
        "company": "회사",
        "location": "근무지",
        "salary": "급여",
        "employment_type": "고용 형태",
        "experience_level": "경력",
        "education_level": "학력",
        "remote": "원격 근무",
        "deadline": "마감일",
        "benefits": "복리후생",
        "requirements": "자격 요건",
        "skills": "필요 기술",
        "url": "지원 링크",
        "email": "이메일",
        "phone": "전화",
        "apply": "지원 방법",
        "contact": "담당자",
    },
    "en": {
        "title": "Title",
        "company": "Company",
        "location": "Location",
        "salary": "Salary",
        "employment_type": "Employment type",
        "experience_level": "Experience",
        "education_level": "Education",
        "remote": "Remote work",
        "deadline": "Deadline",
        "benefits": "Benefits",
        "requirements": "Requirements",
        "skills": "Skills",
        "url": "Apply at",
        "email": "Email",
        "phone": "Phone",
        "apply": "How to apply",
        "contact": "Contact",
    },
}

QUESTIONS = {
    "summary": {
        "ko": [
            "이 채용 공고를 요약해 주세요.",
            "이 공고는 어떤 일자리인가요?",
            "이 포지션에 대해 간단히 설명해 주세요.",
            "이 채용 공고의 핵심 내용을 알려 주세요.",
            "'{title}' 공고를 간단히 정리해 주세요.",
        ],
        "en": [
            "Summarise this job posting.",
            "What is this job about?",
            "Give me a short overview of this position.",
            "What are the key points of this posting?",
            "Can you sum up the '{title}' role?",
        ],
    },
    "requirements": {
        "ko": [
            "이 포지션의 자격 요건은 무엇인가요?",
            "지원하려면 어떤 경험과 기술이 필요한가요?",
            "필요한 기술과 자격 요건을 체크리스트로 정리해 주세요.",
            "이 일자리에 필요한 역량은 무엇인가요?",
        ],
        "en": [
            "What are the requirements for this role?",
            "Which skills and qualifications do I need to apply?",
            "Give me a checklist of the requirements and skills.",
            "What experience and skills does this position ask for?",
        ],
    },
    "conditions": {
        "ko": [
            "급여와 근무 조건은 어떻게 되나요?",
            "이 일자리의 급여와 복리후생을 알려 주세요.",
            "근무 조건을 정리해 주세요.",
            "연봉이나 월급, 혜택은 어떻게 되나요?",
        ],
        "en": [
            "What are the salary and working conditions?",
            "How much does this job pay, and what are the benefits?",
            "Tell me about the pay and conditions.",
            "What does this position offer?",
        ],
    },
    "apply": {
        "ko": [
            "어떻게 지원하나요?",
            "지원 방법과 연락처를 알려 주세요.",
            "이 공고에 지원하려면 어디로 연락해야 하나요?",
            "지원 절차가 어떻게 되나요?",
        ],
        "en": [
            "How do I apply?",
            "How can I apply, and whom should I contact?",
            "What are the application details for this job?",
            "Where do I send my application?",
        ],
    },
    "duties": {
        "ko": [
            "이 포지션의 주요 업무는 무엇인가요?",
            "입사하면 어떤 일을 하게 되나요?",
            "담당 업무를 알려 주세요.",
        ],
        "en": [
            "What are the main responsibilities?",
            "What would I be doing in this job?",
            "List the duties of this role.",
        ],
    },
}


# The fields a document opens with: every short fact an answer may state, so that an answer can always
# be read off the document, even when the description has to be shortened to fit the context.
HEADER_FIELDS = (
    "title",
    "company",
    "location",
    "salary",
    "employment_type",
    "experience_level",
    "education_level",
    "remote",
    "deadline",
)
HEADER_CONTACTS = ("url", "email", "phone")


def render_doc(p: Posting) -> str:
    """The posting as the model reads it: labelled header lines (its fields), a blank line, the content."""
    return render_header(p) + "\n\n" + p.content


def render_header(p: Posting) -> str:
    """The labelled header lines alone ("Title: ...", "Salary: ...", ...): what field questions quote."""
    labels = LABELS[p.lang]
    header = [
        f"{labels[key]}: {_remote(value, p.lang) if key == 'remote' else value}"
        for key, value in _fields(p, *HEADER_FIELDS)
    ]
    if p.skills:
        header.append(f"{labels['skills']}: {', '.join(p.skills)}")
    header += [f"{labels[k]}: {p.contacts[k]}" for k in HEADER_CONTACTS if k in p.contacts]
    return "\n".join(header)


def _fields(p: Posting, *keys: str) -> list[tuple[str, str]]:
    return [(k, v) for k in keys if (v := getattr(p, k))]


def _squeeze(text: str) -> str:
    return " ".join(text.split())


def _stated(p: Posting, items: Iterable[str]) -> list[str]:
    """The items the posting's text itself states. A posting's fields can list more than its content
    shows (a generated posting leaves out its "nice to have" or benefits section a quarter of the
    time; a real one's fields may be filled from elsewhere): an answer that listed those would teach
    the model to invent, and a reference that held them could not be matched by reading."""
    text = _squeeze(render_doc(p))
    return [item for item in items if _squeeze(item) in text]


def _bullets(items: Iterable[str]) -> str:
    return "\n".join(f"- {item}" for item in items)


def _remote(value: str, lang: str) -> str:
    words = {"yes": ("가능", "Yes"), "no": ("불가", "No")}
    return words[value][lang == "en"] if value in words else value


# A sentence ends at . ! or ? and a space (Korean "…합니다." included); we quote at most the first two.
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _lead(content: str, max_chars: int = 300) -> str | None:
    """The posting's opening prose (not a heading or list item), cut at a sentence boundary."""
    for line in content.split("\n"):
        line = line.strip()
        if len(line) < 20 or line.startswith(("#", "-", "*", "|", ">", "[")) or re.match(r"\d+[.)]\s", line):
            continue
        out = ""
        for sentence in _SENTENCE.split(line)[:2]:
            if out and len(out) + len(sentence) + 1 > max_chars:
                break
            out = f"{out} {sentence}".strip()
        return out if len(out) <= max_chars else out[:max_chars].rsplit(" ", 1)[0] + " …"
    return None


# --- answers: each returns None when the posting lacks the fields it needs ---------------------------


def _summary(p: Posting, rng: random.Random) -> str | None:
    ko, L = p.lang == "ko", LABELS[p.lang]
    if ko:
        opening = [
            f"{p.company}에서 '{p.title}' 포지션을 채용합니다."
            if p.company
            else f"'{p.title}' 포지션 채용 공고입니다.",
            f"'{p.title}' 채용 공고입니다." + (f" 채용 회사는 {p.company}입니다." if p.company else ""),
        ]
    else:
        opening = [
            f"{p.company} is hiring for the {p.title} role."
            if p.company
            else f"This posting is for the {p.title} role.",
            f"This posting is for the role of {p.title}" + (f" at {p.company}." if p.company else "."),
        ]
    lines = [rng.choice(opening)]
    if p.location:
        lines.append(f"근무지는 {p.location}입니다." if ko else f"The job is based in {p.location}.")
    facts = _fields(p, "employment_type", "experience_level", "salary")
    if facts:
        lines.append(" / ".join(f"{L[k]}: {v}" for k, v in facts))
    if duties := _stated(p, p.responsibilities):
        top = ", ".join(duties[:3])
        lines.append(f"주요 업무: {top}" if ko else f"Main duties: {top}")
    lead = _lead(p.content)
    if lead:
        lines.append(f"공고 소개: {lead}" if ko else f"From the posting: {lead}")
    return "\n".join(lines)


def _requirements(p: Posting, rng: random.Random) -> str | None:
    if not (p.requirements or p.skills or p.education_level or p.experience_level):
        return None
    ko, L = p.lang == "ko", LABELS[p.lang]
    intro = (
        ["지원 전에 아래 항목을 확인하세요.", "공고에 명시된 자격 요건입니다.", ""]
        if ko
        else ["Check these before you apply.", "These are the requirements stated in the posting.", ""]
    )
    parts = [rng.choice(intro)]
    if requirements := _stated(p, p.requirements):
        parts.append(f"{L['requirements']}:\n{_bullets(requirements)}")
    if p.skills:
        parts.append(
            f"{L['skills']}:\n{_bullets(p.skills)}"
            if rng.random() < 0.5
            else f"{L['skills']}: {', '.join(p.skills)}"
        )
    facts = _fields(p, "experience_level", "education_level")
    if facts:
        parts.append("\n".join(f"{L[k]}: {v}" for k, v in facts))
    return "\n\n".join(part for part in parts if part)


def _conditions(p: Posting, rng: random.Random) -> str | None:
    if not (p.salary or p.benefits or p.employment_type or p.remote):
        return None
    ko, L = p.lang == "ko", LABELS[p.lang]
    missing = "공고에 명시되어 있지 않습니다" if ko else "not stated in the posting"
    lines = [f"{L['salary']}: {p.salary or missing}"]
    lines += [f"{L[k]}: {v}" for k, v in _fields(p, "employment_type", "location")]
    if p.remote:
        lines.append(f"{L['remote']}: {_remote(p.remote, p.lang)}")
    if p.deadline and rng.random() < 0.5:
        lines.append(f"{L['deadline']}: {p.deadline}")
    text = "\n".join(lines)
    if benefits := _stated(p, p.benefits):
        text += f"\n\n{L['benefits']}:\n{_bullets(benefits)}"
    return text


def _apply(p: Posting, rng: random.Random) -> str | None:
    if not p.contacts:
        return None
    ko, L = p.lang == "ko", LABELS[p.lang]
    lines = [
        f"{L[k]}: {p.contacts[k]}" for k in ("apply", "url", "email", "phone", "contact") if k in p.contacts
    ]
    if p.deadline:
        lines.append(f"{L['deadline']}: {p.deadline}")
    intro = (["지원 정보는 다음과 같습니다.", ""] if ko else ["Here is how to apply.", ""])[
        rng.random() < 0.5
    ]
    return "\n".join([intro, *lines] if intro else lines)


def _duties(p: Posting, rng: random.Random) -> str | None:
    duties = _stated(p, p.responsibilities)
    if not duties:
        return None
    intro = (
        ["주요 업무는 다음과 같습니다.", f"'{p.title}' 포지션의 담당 업무입니다."]
        if p.lang == "ko"
        else ["The main responsibilities are:", f"As {p.title} you would:"]
    )
    return f"{rng.choice(intro)}\n{_bullets(duties)}"


# --- field questions: one value the posting states, answered as its header line -----------------------

# kind -> where the value lives: a Posting attribute, or a key of Posting.contacts ("contacts.email").
# The label is LABELS' for the same key, so the answer is the document's own header line
# ("Salary: SGD 4,000 - 6,000 per month"): the model answers by finding that line and copying it, the one
# skill these questions exist to teach, and exact match says whether it did.
FIELDS = {
    "salary": "salary",
    "location": "location",
    "employment_type": "employment_type",
    "company": "company",
    "title": "title",
    "experience": "experience_level",
    "education": "education_level",
    "deadline": "deadline",
    "email": "contacts.email",
    "phone": "contacts.phone",
    "url": "contacts.url",
}

FIELD_QUESTIONS = {
    "salary": {
        "ko": ["급여는 얼마인가요?", "이 일자리의 급여를 알려 주세요.", "월급이나 연봉이 얼마예요?"],
        "en": ["What is the salary?", "How much does this job pay?", "What's the pay?"],
    },
    "location": {
        "ko": ["근무지는 어디인가요?", "어디에서 근무하나요?", "근무 위치를 알려 주세요."],
        "en": ["Where is this job?", "Where is the job located?", "Where would I work?"],
    },
    "employment_type": {
        "ko": ["고용 형태가 어떻게 되나요?", "정규직인가요, 계약직인가요?", "근무 형태를 알려 주세요."],
        "en": [
            "What type of employment is this?",
            "Is it full-time or part-time?",
            "What kind of contract is it?",
        ],
    },
    "company": {
        "ko": ["채용하는 회사는 어디인가요?", "어느 회사의 공고인가요?", "회사 이름이 뭔가요?"],
        "en": ["Which company is hiring?", "Who is the employer?", "What company posted this job?"],
    },
    "title": {
        "ko": ["직무명이 무엇인가요?", "어떤 포지션인가요?", "모집 직무를 알려 주세요."],
        "en": ["What is the job title?", "What position is this?", "Which role is advertised?"],
    },
    "experience": {
        "ko": [
            "경력은 얼마나 필요한가요?",
            "요구하는 경력 수준은 어떻게 되나요?",
            "필요한 경력을 알려 주세요.",
        ],
        "en": [
            "How much experience is required?",
            "What experience level do they want?",
            "How experienced must I be?",
        ],
    },
    "education": {
        "ko": ["학력 조건이 어떻게 되나요?", "필요한 학력은 무엇인가요?"],
        "en": ["What education is required?", "What degree do I need?"],
    },
    "deadline": {
        "ko": ["마감일이 언제인가요?", "언제까지 지원할 수 있나요?"],
        "en": ["When is the application deadline?", "Until when can I apply?"],
    },
    "email": {
        "ko": ["지원 이메일 주소가 무엇인가요?", "연락처 이메일을 알려 주세요."],
        "en": ["What email address do I apply to?", "What is the contact email?"],
    },
    "phone": {
        "ko": ["연락처 전화번호가 무엇인가요?", "문의 전화번호를 알려 주세요."],
        "en": ["What is the contact phone number?", "What number can I call?"],
    },
    "url": {
        "ko": ["지원 링크가 무엇인가요?", "온라인 지원 주소를 알려 주세요."],
        "en": ["Where can I apply online?", "What is the application link?"],
    },
}
_LABEL_KEYS = {"experience": "experience_level", "education": "education_level"}


def field_value(p: Posting, kind: str) -> str | None:
    """The value a field question asks for, as the document's header shows it; None when absent."""
    where = FIELDS[kind]
    if where.startswith("contacts."):
        return p.contacts.get(where.removeprefix("contacts."))
    return getattr(p, where)


def _field_answer(kind: str) -> Callable[[Posting, random.Random], str | None]:
    def answer(p: Posting, rng: random.Random) -> str | None:
        value = field_value(p, kind)
        return f"{LABELS[p.lang][_LABEL_KEYS.get(kind, kind)]}: {value}" if value else None

    return answer


ANSWERS: dict[str, Callable[[Posting, random.Random], str | None]] = {
    "summary": _summary,
    "requirements": _requirements,
    "conditions": _conditions,
    "apply": _apply,
    "duties": _duties,
    **{kind: _field_answer(kind) for kind in FIELDS},
}
QUESTIONS.update(FIELD_QUESTIONS)
LONG_KINDS = ("summary", "requirements", "conditions", "apply", "duties")  # answers of several lines
FIELD_KINDS = tuple(FIELDS)  # one value, copied from the posting
KINDS = LONG_KINDS + FIELD_KINDS


def samples_for(p: Posting, seed: int, kinds: Iterable[str] = KINDS, drill: bool = False) -> list[Sample]:
    """Every applicable question kind for one posting, phrasings drawn from rng(seed, posting id).
    `drill`: the document is the posting's header alone, phrasings drawn apart from the full samples'."""
    # str seeds hash with SHA-512: stable across runs and machines
    rng = random.Random(f"{seed}/drill/{p.id}" if drill else f"{seed}/{p.id}")
    doc = render_header(p) if drill else render_doc(p)
    out = []
    for kind in kinds:
        answer = ANSWERS[kind](p, rng)
        question = rng.choice(QUESTIONS[kind][p.lang]).format(title=p.title)
        if answer:
            out.append(Sample(p.id, kind, p.lang, question, doc, answer))
    return out


def make_samples(postings: Iterable[Posting], seed: int, kinds: Iterable[str] = KINDS) -> Iterator[Sample]:
    """Samples for many postings, lazily: feed it straight to the tokenizer trainer or write_bins."""
    kinds = tuple(kinds)
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown question kinds {sorted(unknown)}; known: {list(KINDS)}")
    for p in postings:
        yield from samples_for(p, seed, kinds)


def drill_samples(postings: Iterable[Posting], seed: int) -> Iterator[Sample]:
    """Field questions about each posting's header alone: short samples (about 80 tokens, against a full
    sample's 250) whose answer is one of the few lines above it. The same copying a field question asks
    of a whole posting, several times as often per token trained (`jai prepare --drills`): with them a
    small model copies values within make run's minutes (docs/quality.md)."""
    for p in postings:
        yield from samples_for(p, seed, FIELD_KINDS, drill=True)


# Training only, never asked by `jai eval`: the header copied out whole, line by line.
ECHO_QUESTIONS = {
    "ko": ["공고의 세부 정보를 그대로 옮겨 적어 주세요.", "이 공고의 항목을 적힌 그대로 보여 주세요."],
    "en": [
        "Copy out this posting's details as written.",
        "List every detail of this posting, word for word.",
    ],
}


def echo_samples(postings: Iterable[Posting], seed: int) -> Iterator[Sample]:
    """Each posting's header, asked back whole (`jai prepare --echo`). Every answer token is the token
    after the same place in [DOC]: the copy a field question needs ("find this line, then continue it"),
    practised on every token of the answer instead of the ten of one value. Salary, phone, URL and company
    answers need that copy on digits and names the model cannot have memorised (docs/quality.md)."""
    for p in postings:
        rng = random.Random(f"{seed}/echo/{p.id}")
        header = render_header(p)
        yield Sample(p.id, "echo", p.lang, rng.choice(ECHO_QUESTIONS[p.lang]), header, header)
