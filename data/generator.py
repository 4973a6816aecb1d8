"""Generate data/jobs/postings.json: the bundled sample of ~300 invented job postings.

    python -m jai.data.generator         # same output, byte for byte, on every run

Every company, posting and sentence here was written for this project. The sample imitates the
reference data: Korean postings by Singapore-based employers (and English ones), in the reference
schema, with its mess - partial or empty `meta`, "000" for withheld contacts, lists given as one
string, salaries given monthly, yearly, hourly, as "negotiable" or not at all - plus a handful of
deliberately broken records that the loader must skip and count.

It is built from templates and seeded choices. The tables (data/jobs/tables.json) hold, per
industry, companies, roles with their own duties, requirements, nice-to-haves and skills, in English and
Korean, and the shared pools (areas, levels, benefits, section headings); this file holds the drawing
and the sentence templates. Seniority, pay form and layout (heading and bullet styles, section order)
are drawn per posting. `jai prepare --varied N` also uses it, to add N more training postings whose
facts are drawn independently (`varied_postings`).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from jai.atomic import write_text_atomic

SEED = 20_250_601
N_POSTINGS = 300
KO_SHARE = 0.55
OUT = Path(__file__).resolve().parent / "jobs" / "postings.json"
TABLES = Path(__file__).resolve().parent / "jobs" / "tables.json"

Pair = tuple[str, str]  # (English, Korean); a two-item list once read from the tables


@dataclass
class Role:
    en: str
    ko: str
    monthly: tuple[int, int]  # SGD per month at mid level
    duties: list[Pair]
    skills: list[str] = field(default_factory=list)
    levels: tuple[str, ...] = ("junior", "mid", "senior")
    hourly: bool = False  # often part-time, paid by the hour


@dataclass
class Industry:
    name: Pair
    desc: Pair  # "logistics and supply-chain" / "물류 및 공급망"
    companies: list[Pair]
    missions: list[Pair]
    teams: list[Pair]
    roles: list[Role]
    requirements: list[Pair]
    nice: list[Pair]
    skills: list[str]
    benefits: list[Pair] = field(default_factory=list)
    remote_ok: bool = False
    shifts: bool = False


def _industry(table: dict) -> Industry:
    return Industry(**{**table, "roles": [Role(**role) for role in table["roles"]]})


_T = json.loads(TABLES.read_text(encoding="utf-8"))
INDUSTRIES = [_industry(t) for t in _T["industries"]]
AREAS: list[Pair] = _T["areas"]
ABROAD: list[str] = _T["abroad"]
LEVELS: dict[str, list] = _T["levels"]  # level -> [pay factor, English title, Korean title, years]
EXPERIENCE: dict[str, Pair] = _T["experience"]
EDUCATION: list[Pair] = _T["education"]
EMPLOYMENT: dict[str, Pair] = _T["employment"]
HOURS: list[Pair] = _T["hours"]
SHIFT_HOURS: list[Pair] = _T["shift_hours"]
PART_HOURS: list[Pair] = _T["part_hours"]
BENEFITS: list[Pair] = _T["benefits"]
PART_BENEFITS: list[Pair] = _T["part_benefits"]
PROCESS: list[Pair] = _T["process"]
HEADINGS: dict[str, list[list[str]]] = _T["headings"]  # section -> [English headings, Korean headings]


# --- helpers -----------------------------------------------------------------------------------------


def josa(word: str, pair: str) -> str:
    """Korean particle after `word`: josa("개발자", "을/를") -> "를". Batchim decides."""
    consonant_form, vowel_form = pair.split("/")
    last = word.rstrip(")").rstrip()[-1]
    if not "가" <= last <= "힣":
        return vowel_form
    batchim = (ord(last) - 0xAC00) % 28
    if pair == "으로/로" and batchim == 8:  # ㄹ takes 로
        return vowel_form
    return consonant_form if batchim else vowel_form


def slug(name: str) -> str:
    words = [
        w for w in name.lower().replace("&", " ").replace(".", " ").split() if w not in {"pte", "ltd", "co"}
    ]
    return "".join(c for c in "".join(words[:2]) if c.isalnum())


def money(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.2f}".rstrip("0").rstrip(".")


@dataclass
class Draw:
    """Everything chosen for one posting, before it is written out."""

    ko: bool
    ind: Industry
    role: Role
    level: str
    company: Pair
    area: Pair
    team: Pair
    employment: str
    pay: dict
    duties: list[str]
    reqs: list[str]
    nice: list[str]
    skills: list[str]
    benefits: list[str]
    hours: str
    remote: bool | str | None
    email: str
    phone: str
    url: str
    deadline: str | None
    created: str


def draw_pay(rng: random.Random, role: Role, level: str, employment: str, scale: float = 1.0) -> dict:
    """Salary in one of the forms real postings use; 'form' says which. `scale` spreads the role's pay."""
    factor = LEVELS[level][0] * scale
    lo, hi = (round(x * factor / 100) * 100 for x in role.monthly)
    if employment in ("part", "temp") or (role.hourly and rng.random() < 0.4):
        rate = max(8.0, round(lo / 190 * rng.uniform(0.9, 1.1) * 2) / 2)
        return {"form": "hourly", "lo": rate, "hi": rate + rng.choice([0, 1, 2, 3]), "currency": "SGD"}
    r = rng.random()
    if r < 0.12:
        return {"form": "negotiable"}
    if r < 0.22:
        return {"form": "missing"}
    if (level in ("senior", "lead") and r < 0.55) or r > 0.92:
        cur = "USD" if rng.random() < 0.1 else "SGD"
        k = 0.75 if cur == "USD" else 1
        return {"form": "annual", "lo": round(lo * 13 * k, -3), "hi": round(hi * 13 * k, -3), "currency": cur}
    return {"form": "monthly", "lo": lo, "hi": hi, "currency": "SGD"}


def pay_text(pay: dict, ko: bool) -> str | None:
    form = pay["form"]
    if form == "missing":
        return None
    if form == "negotiable":
        return "협의" if ko else "Negotiable"
    lo, hi, cur = money(pay["lo"]), money(pay["hi"]), pay["currency"]
    amount = lo if lo == hi else f"{lo} - {hi}" if not ko else f"{lo}~{hi}"
    if ko:
        unit = {"monthly": "월", "annual": "연봉", "hourly": "시급"}[form]
        return f"{unit} {cur} {amount}"
    unit = {"monthly": "per month", "annual": "per year", "hourly": "per hour"}[form]
    return f"{cur} {amount} {unit}"


# Made-up company names for the varied postings (`varied_postings`): syllables no table pairs with an
# industry, so "which company is hiring?" can only be answered by reading the posting.
EN_SYLLABLES = [
    "ka",
    "lo",
    "vex",
    "mi",
    "ra",
    "tor",
    "zen",
    "pal",
    "quin",
    "ru",
    "sol",
    "tam",
    "ve",
    "nor",
    "bel",
    "cor",
    "dax",
    "el",
    "fen",
    "gal",
    "hol",
    "ix",
    "jun",
]
KO_SYLLABLES = list("가나다라마바사아자차카타파하미소리진한성우현도윤서준민영태경")
COMPANY_KINDS: list[Pair] = [
    ("Pte. Ltd.", ""),
    ("Technologies", "테크놀로지"),
    ("Logistics", "로지스틱스"),
    ("Foods", "푸드"),
    ("Group", "그룹"),
    ("Labs", "랩스"),
    ("Trading", "트레이딩"),
    ("Partners", "파트너스"),
    ("Retail", "리테일"),
    ("Engineering", "엔지니어링"),
]


def made_up_company(rng: random.Random) -> Pair:
    en_kind, ko_kind = rng.choice(COMPANY_KINDS)
    word = "".join(rng.choice(EN_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
    ko = "".join(rng.choice(KO_SYLLABLES) for _ in range(rng.randint(2, 3)))
    return f"{word} {en_kind}", f"{ko}{ko_kind}"


def draw(rng: random.Random, ko: bool, index: int, varied: bool = False) -> Draw:
    ind = rng.choice(INDUSTRIES)
    role = rng.choice(ind.roles)
    level = rng.choice(role.levels)
    if level == "intern":
        employment = "intern"
    elif role.hourly and rng.random() < 0.5:
        employment = "part"
    else:
        employment = rng.choices(["full", "contract", "temp"], [0.8, 0.15, 0.05])[0]
    company = made_up_company(rng) if varied else rng.choice(ind.companies)
    domain = slug(company[0]) + rng.choice([".com.sg", ".sg", ".com", ".co"])
    lang = 1 if ko else 0

    def pick(pairs: list[Pair], lo: int, hi: int) -> list[str]:
        return [p[lang] for p in rng.sample(pairs, min(len(pairs), rng.randint(lo, hi)))]

    years = LEVELS[level][3]
    reqs = pick(ind.requirements, 2, 4)
    if years:
        reqs.insert(
            0,
            f"관련 경력 {years}년 이상"
            if ko
            else f"At least {years} year{'s' * (years > 1)} of relevant experience",
        )
    elif level in ("intern", "junior"):
        reqs.insert(0, "신입 및 졸업 예정자 지원 가능" if ko else "Fresh graduates are welcome to apply")
    benefits = pick(PART_BENEFITS if employment == "part" else BENEFITS, 2, 5) + pick(ind.benefits, 0, 2)
    hours_pool = PART_HOURS if employment == "part" else SHIFT_HOURS if ind.shifts else HOURS
    remote: bool | str | None = None
    if ind.remote_ok:
        remote = rng.choice([True, False, "hybrid", "주 2회 재택" if ko else "Hybrid, 2 days from home"])
    elif rng.random() < 0.5:
        remote = False
    posted = date(2024, 9, 1) + timedelta(days=rng.randrange(300))
    created = f"{posted.isoformat()}T{rng.randint(8, 18):02d}:{rng.choice(['00', '15', '30', '45'])}:00+08:00"
    closes = posted + timedelta(days=rng.randint(14, 60))
    deadline = rng.choice([closes.isoformat(), "상시 채용" if ko else "Open until filled", None])
    return Draw(
        ko=ko,
        ind=ind,
        role=role,
        level=level,
        company=company,
        area=rng.choice(AREAS),
        team=rng.choice(ind.teams),
        employment=employment,
        pay=draw_pay(rng, role, level, employment, rng.uniform(0.5, 2.0) if varied else 1.0),
        duties=[d[lang] for d in rng.sample(role.duties, rng.randint(3, len(role.duties)))],
        reqs=reqs,
        nice=pick(ind.nice, 1, 3),
        skills=list(
            dict.fromkeys(
                rng.sample(role.skills, min(len(role.skills), rng.randint(2, 5))) + rng.sample(ind.skills, 1)
            )
        ),
        benefits=benefits,
        hours=rng.choice(hours_pool)[lang],
        remote=remote,
        email=f"{rng.choice(['hr', 'careers', 'recruit', 'jobs', 'talent'])}@{domain}",
        phone=f"+65 {rng.choice('689')}{rng.randint(100, 999)} {rng.randint(1000, 9999)}",
        url=f"https://{rng.choice(['careers.', 'www.', ''])}{domain}/"
        f"{rng.choice(['jobs', 'careers', 'apply'])}/{1000 + index}",
        deadline=deadline,
        created=created,
    )


# --- writing the posting -----------------------------------------------------------------------------


def title_of(d: Draw) -> str:
    base = d.role.ko if d.ko else d.role.en
    template = LEVELS[d.level][2 if d.ko else 1]
    return template.format(t=base)


def company_name(rng: random.Random, d: Draw) -> str:
    en, ko = d.company
    if not d.ko:
        return en
    return rng.choice([ko, en, f"{ko} ({en})"])


def location_of(rng: random.Random, d: Draw) -> str:
    en, ko = d.area
    if not d.ko and rng.random() < 0.06:
        return rng.choice(ABROAD)
    if d.ko:
        return rng.choice([f"싱가포르 {ko}", f"{ko}, 싱가포르", f"싱가포르 ({en})"])
    return rng.choice([f"{en}, Singapore", f"Singapore - {en}", en])


def bullets(rng: random.Random, items: list[str], style: str) -> str:
    if style == "1.":
        return "\n".join(f"{i}. {item}" for i, item in enumerate(items, 1))
    return "\n".join(f"{style} {item}" for item in items)


def heading(text: str, style: str) -> str:
    return {"##": f"## {text}", "###": f"### {text}", "**": f"**{text}**", "[]": f"[{text}]"}[style]


def intro_ko(rng: random.Random, d: Draw, company: str, title: str) -> str:
    mission = rng.choice(d.ind.missions)[1]
    area = d.area[1]
    company_intro = rng.choice(
        [
            f"{company}{josa(company, '은/는')} 싱가포르 {area}에 위치한 "
            f"{d.ind.desc[1]} 기업으로, {mission}.",
            f"당사는 {mission}. 싱가포르 {area}에 사무실을 두고 "
            "현지 직원과 한국인 직원이 함께 일하고 있습니다.",
            f"{company}{josa(company, '은/는')} {rng.randint(2005, 2021)}년 설립 이후 {mission}.",
            f"저희 {company}{josa(company, '은/는')} {mission}. "
            "빠르게 성장하는 팀에서 함께할 동료를 찾고 있습니다.",
        ]
    )
    role_intro = rng.choice(
        [
            f"{d.team[1]}팀에서 함께 성장할 {title}{josa(title, '을/를')} 모집합니다.",
            f"이번에 {d.team[1]}팀 {title} 포지션을 채용합니다.",
            f"{title} 포지션에 관심 있는 분들의 많은 지원 바랍니다.",
            f"{d.team[1]}팀의 {title}{josa(title, '으로/로')} 합류하실 분을 찾습니다.",
        ]
    )
    return f"{company_intro} {role_intro}"


def intro_en(rng: random.Random, d: Draw, company: str, title: str) -> str:
    mission = rng.choice(d.ind.missions)[0]
    area = d.area[0]
    company_intro = rng.choice(
        [
            f"{company} is a {d.ind.desc[0]} company based in {area}, Singapore. Every day, {mission}.",
            f"At {company}, {mission}. "
            f"Our team of {rng.choice([15, 40, 80, 150, 400])} people works from {area}.",
            f"Founded in {rng.randint(2005, 2021)}, {company} has grown steadily: today {mission}.",
            f"Who we are: {mission}. We are a friendly, fast-moving team in {area}.",
        ]
    )
    role_intro = rng.choice(
        [
            f"We're looking for our next {title} to join the {d.team[0]} team.",
            f"Join our {d.team[0]} team as {title}.",
            f"This {title} role sits in the {d.team[0]} team and reports to the {d.team[0]} lead.",
            f"We are hiring: {title}, {d.team[0]} team.",
        ]
    )
    return f"{company_intro} {role_intro}"


def content_of(
    rng: random.Random, d: Draw, company: str, title: str, location: str, salary: str | None
) -> str:
    """Markdown body. Section set, order, headings and bullet style vary; facts match the meta."""
    ko = d.ko
    lang = 1 if ko else 0
    h_style = rng.choice(["##", "##", "###", "**", "[]"])
    b_style = rng.choice(["-", "-", "*", "•", "1."])

    def h(key: str) -> str:
        return heading(rng.choice(HEADINGS[key][lang]), h_style)

    intro = intro_ko(rng, d, company, title) if ko else intro_en(rng, d, company, title)
    sections = []
    if rng.random() < 0.7:
        sections.append(f"{h('about')}\n\n{intro}")
    else:
        sections.append(intro)
    sections.append(f"{h('duties')}\n\n{bullets(rng, d.duties, b_style)}")
    sections.append(f"{h('reqs')}\n\n{bullets(rng, d.reqs, b_style)}")
    optional = []
    if rng.random() < 0.7:
        optional.append(f"{h('nice')}\n\n{bullets(rng, d.nice, b_style)}")
    if rng.random() < 0.4:
        optional.append(f"{h('skills')}\n\n{', '.join(d.skills)}")
    rng.shuffle(optional)
    sections += optional

    emp = EMPLOYMENT[d.employment][lang]
    terms = [
        ("고용 형태" if ko else "Employment", emp),
        ("근무 시간" if ko else "Hours", d.hours),
        ("근무지" if ko else "Location", location),
    ]
    if salary and rng.random() < 0.75:
        terms.append(("급여" if ko else "Salary", salary))
    if d.remote not in (None, False) and rng.random() < 0.8:
        remote_text = (
            d.remote if isinstance(d.remote, str) else ("재택 근무 가능" if ko else "Remote-friendly")
        )
        terms.append(("원격 근무" if ko else "Remote", remote_text))
    if rng.random() < 0.85:
        sep = rng.choice([": ", " - "])
        sections.append(f"{h('terms')}\n\n" + "\n".join(f"- {k}{sep}{v}" for k, v in terms))
    if rng.random() < 0.75:
        sections.append(f"{h('benefits')}\n\n{bullets(rng, d.benefits, b_style)}")

    apply_lines = []
    how = rng.random()
    if ko:
        if how < 0.5:
            apply_lines.append(
                f"국문 또는 영문 이력서를 {d.email}로 보내 주세요. "
                f"메일 제목에 '{title} 지원'이라고 적어 주세요."
            )
        else:
            apply_lines.append(f"아래 링크에서 온라인으로 지원해 주세요.\n{d.url}")
        if rng.random() < 0.5:
            apply_lines.append(f"채용 절차: {rng.choice(PROCESS)[1]}")
        apply_lines.append(
            rng.choice(["서류 합격자에 한해 개별 연락드립니다.", "문의 사항은 이메일로 보내 주세요.", ""])
        )
    else:
        if how < 0.5:
            apply_lines.append(f"Send your CV to {d.email} with '{title}' in the subject line.")
        else:
            apply_lines.append(f"Apply online: {d.url}")
        if rng.random() < 0.5:
            apply_lines.append(f"Our process: {rng.choice(PROCESS)[0]}.")
        apply_lines.append(
            rng.choice(
                [
                    "Only shortlisted candidates will be notified.",
                    "We reply to every application within two weeks.",
                    "",
                ]
            )
        )
    if rng.random() < 0.8:
        sections.append(f"{h('apply')}\n\n" + "\n".join(line for line in apply_lines if line))
    return "\n\n".join(sections)


def posting(rng: random.Random, index: int, varied: bool = False, prefix: str = "sg") -> dict:
    d = draw(rng, rng.random() < KO_SHARE, index, varied)
    lang = 1 if d.ko else 0
    title = title_of(d)
    company = company_name(rng, d)
    location = location_of(rng, d)
    salary = pay_text(d.pay, d.ko)
    content = content_of(rng, d, company, title, location, salary)
    pay = d.pay
    meta: dict = {
        "company_name": company,
        "position": d.role.ko if d.ko else d.role.en,
        "industry": d.ind.name[lang],
        "location": location,
        "employment_type": EMPLOYMENT[d.employment][lang],
        "salary": salary,
        "salary_type": {"monthly": "monthly", "annual": "annual", "hourly": "hourly"}.get(pay["form"]),
        "salary_currency": pay.get("currency"),
        "min_salary": pay.get("lo"),
        "max_salary": pay.get("hi"),
        "experience_level": EXPERIENCE[d.level][lang],
        "education_level": rng.choice(EDUCATION)[lang],
        "deadline": d.deadline,
        "responsibilities": d.duties,
        "requirements": d.reqs + d.nice,
        "skills": d.skills,
        "benefits": d.benefits,
        "remote_work": d.remote,
        "application_url": d.url,
        "contact_email": d.email,
        "contact_phone": d.phone,
    }
    # The mess of real data. Salary text only half the time when amounts exist (the loader builds it).
    if pay["form"] in ("monthly", "annual", "hourly") and rng.random() < 0.5:
        meta["salary"] = None
    if rng.random() < 0.2:
        meta["contact_phone"] = "000"  # withheld
    if rng.random() < 0.06:
        meta["contact_email"] = rng.choice(["000", "N/A", "-", ""])
    if rng.random() < 0.2:
        meta["skills"] = ", ".join(d.skills)  # one string instead of a list
    if rng.random() < 0.1:
        meta["requirements"] = "\n".join(f"- {r}" for r in meta["requirements"])
    if pay["form"] == "missing" and rng.random() < 0.5:
        meta["min_salary"] = meta["max_salary"] = "000"
    r = rng.random()
    if r < 0.07:
        meta = {}
    elif r < 0.35:  # partial: some keys dropped
        for key in rng.sample(sorted(meta), rng.randint(3, 12)):
            del meta[key]
    meta = {k: v for k, v in meta.items() if v is not None or rng.random() < 0.3}  # some explicit nulls stay
    record = {
        "id": f"{prefix}-{index:05d}",
        "title": title,
        "content": content,
        "created_at": d.created,
        "meta": meta,
    }
    if rng.random() < 0.03:
        del record["meta"]
    return record


def varied_postings(seed: int, n: int, stream: str = "varied") -> list[dict]:
    """`n` more postings like the bundled ones, for training only, whose facts are drawn independently:
    made-up companies, pay spread over 0.5-2x the role's, contacts and dates at random. Seeded (the same
    `seed` and `n` give the same records) and made at `jai prepare` time, so nothing large is committed.

    Why: 270 training postings let a model lower its loss by reciting the tables' few companies and each
    role's one pay range; facts that no table predicts can only be learned by copying them from [DOC].
    Another `stream` draws other postings from the same seed (ids prefixed with it instead of "gen")."""
    rng = random.Random(f"{stream}/{seed}")  # str seeds hash with SHA-512: stable across runs and machines
    prefix = "gen" if stream == "varied" else stream
    return [posting(rng, i, varied=True, prefix=prefix) for i in range(1, n + 1)]


def as_mojibake(text: str) -> str:
    """What a UTF-8 text looks like after being read as cp1252 (bytes cp1252 lacks become C1 controls)."""

    def char(b: int) -> str:
        try:
            return bytes([b]).decode("cp1252")
        except UnicodeDecodeError:
            return chr(b)

    return "".join(char(b) for b in text.encode("utf-8"))


def bad_records(good: list[dict]) -> list[object]:
    """Records the loader must skip and count, one per failure kind."""
    return [
        {
            "id": "bad-missing-content",
            "title": "야간 물류센터 관리자",
            "created_at": "2025-03-02T09:00:00+08:00",
            "meta": {},
        },
        "이 레코드는 JSON 객체가 아닙니다",
        ["Barista", "Make coffee"],
        {
            "id": "bad-title-type",
            "title": 404,
            "content": "## About us\n\nA placeholder posting with a numeric title.",
        },
        {
            "id": "bad-meta-type",
            "title": "Data Analyst",
            "content": "Analyse data.",
            "meta": ["Python", "SQL"],
        },
        {
            "id": "bad-encoding",
            "title": "Kitchen Helper",
            "content": "Help the chef \ufffd\ufffd prepare banchan daily.",
        },
    ]


def build(seed: int = SEED, n: int = N_POSTINGS) -> list[object]:
    rng = random.Random(seed)
    good = [posting(rng, i) for i in range(1, n + 1)]
    # Two records stored as mojibake (one Korean, one English): the loader repairs and keeps them.
    korean = [any("가" <= c <= "힣" for c in r["title"]) for r in good]
    for i in (korean.index(True, 20), korean.index(False, 20)):
        typeset = good[i]["content"].replace("'", "’").replace(" - ", " – ")  # so English has bytes to mangle
        good[i] = {**good[i], "title": as_mojibake(good[i]["title"]), "content": as_mojibake(typeset)}
    records: list[object] = list(good)
    for bad in bad_records(good):  # spread through the file, at seeded positions
        records.insert(rng.randrange(len(records)), bad)
    records.append({**good[9], "title": "A repost under an id already used"})  # a duplicate id, last
    return records


def main() -> None:
    records = build()
    text = json.dumps(records, ensure_ascii=False, indent=1) + "\n"
    write_text_atomic(OUT, text)
    print(f"wrote {OUT} ({len(records)} records, {len(text.encode()) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
