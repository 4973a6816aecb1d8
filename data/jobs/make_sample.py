"""Generate data/jobs/postings.json: the bundled sample of ~300 invented job postings.

    python -m jai.data.jobs.make_sample          # from the repo root; same output on every run

Every company, posting and sentence here was written for this project. The sample imitates the
reference data: Korean postings by Singapore-based employers (and English ones), in the reference
schema, with its mess - partial or empty `meta`, "000" for withheld contacts, lists given as one
string, salaries given monthly, yearly, hourly, as "negotiable" or not at all - plus a handful of
deliberately broken records that the loader must skip and count.

It is built from templates and seeded choices: per industry, companies, roles with their own duties,
requirements, nice-to-haves and skills, in English and Korean; per section several sentence templates
and headings; seniority, pay form, layout (heading and bullet styles, section order) drawn per posting.
"""

# Long lines are the data tables: ruff counts each Hangul syllable as two columns, and a sentence
# cannot be wrapped without splitting the string.
# ruff: noqa: E501

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
OUT = Path(__file__).resolve().parent / "postings.json"

Pair = tuple[str, str]  # (English, Korean)


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


# --- the industries ----------------------------------------------------------------------------------

INDUSTRIES = [
    Industry(
        name=("Software", "IT/소프트웨어"),
        desc=("software and cloud services", "소프트웨어 및 클라우드 서비스"),
        companies=[
            ("Lion City Labs Pte. Ltd.", "라이언시티랩스"),
            ("Kopi Cloud Technologies", "코피클라우드 테크놀로지"),
            ("Straits Digital Pte. Ltd.", "스트레이츠 디지털"),
            ("Hanbit Software Asia", "한빛소프트웨어 아시아"),
            ("Orchid Stack Pte. Ltd.", "오키드스택"),
        ],
        missions=[
            (
                "we build the payment and booking software that thousands of small businesses in Southeast Asia run on",
                "동남아시아 수천 개 중소기업이 사용하는 결제·예약 소프트웨어를 만들고 있습니다",
            ),
            (
                "we help retailers and logistics firms move their systems to the cloud",
                "유통·물류 기업의 시스템을 클라우드로 전환하는 일을 돕고 있습니다",
            ),
            (
                "we develop a super-app for Korean and Singaporean users living across the region",
                "동남아에 거주하는 한국인과 싱가포르 사용자를 위한 슈퍼앱을 개발하고 있습니다",
            ),
        ],
        teams=[("Platform", "플랫폼"), ("Payments", "결제"), ("Growth", "그로스"), ("Data", "데이터")],
        roles=[
            Role(
                "Backend Engineer",
                "백엔드 개발자",
                (5500, 8500),
                [
                    ("Design, build and maintain REST and gRPC APIs", "REST 및 gRPC API 설계, 개발 및 운영"),
                    (
                        "Model data and tune queries in PostgreSQL",
                        "PostgreSQL 데이터 모델링 및 쿼리 성능 개선",
                    ),
                    (
                        "Own services in production, including on-call rotation",
                        "운영 중인 서비스 담당 및 온콜 대응",
                    ),
                    ("Review code and mentor other engineers", "코드 리뷰 및 주니어 개발자 멘토링"),
                    ("Break a monolith into well-defined services", "모놀리식 구조를 마이크로서비스로 전환"),
                ],
                ["Python", "Go", "PostgreSQL", "Redis", "Kafka", "gRPC"],
                ("intern", "junior", "mid", "senior", "lead"),
            ),
            Role(
                "Frontend Developer",
                "프론트엔드 개발자",
                (5000, 7800),
                [
                    (
                        "Build responsive web screens with React and TypeScript",
                        "React와 TypeScript 기반 반응형 웹 화면 개발",
                    ),
                    (
                        "Work with designers to turn Figma files into components",
                        "디자이너와 협업하여 Figma 시안을 컴포넌트로 구현",
                    ),
                    (
                        "Improve page load time and Core Web Vitals",
                        "페이지 로딩 속도 및 Core Web Vitals 개선",
                    ),
                    ("Write unit and end-to-end tests", "단위 테스트 및 E2E 테스트 작성"),
                ],
                ["React", "TypeScript", "Next.js", "CSS", "Jest", "Playwright"],
            ),
            Role(
                "Data Engineer",
                "데이터 엔지니어",
                (6000, 9000),
                [
                    ("Build batch and streaming data pipelines", "배치 및 스트리밍 데이터 파이프라인 구축"),
                    ("Maintain the data warehouse and its dbt models", "데이터 웨어하우스와 dbt 모델 관리"),
                    ("Monitor data quality and fix broken jobs", "데이터 품질 모니터링 및 장애 작업 복구"),
                    (
                        "Support analysts with clean, documented tables",
                        "분석가가 사용할 정제된 테이블 제공 및 문서화",
                    ),
                ],
                ["Python", "SQL", "Airflow", "Spark", "dbt", "BigQuery"],
            ),
            Role(
                "QA Engineer",
                "QA 엔지니어",
                (4200, 6500),
                [
                    ("Write and run test plans for each release", "릴리스별 테스트 계획 수립 및 수행"),
                    ("Automate regression tests for web and mobile", "웹·모바일 회귀 테스트 자동화"),
                    (
                        "Report defects clearly and follow them to closure",
                        "결함 리포트 작성 및 해결까지 추적",
                    ),
                    ("Keep the CI test suite fast and reliable", "CI 테스트 환경의 속도와 안정성 관리"),
                ],
                ["Selenium", "Appium", "Python", "Jira", "Postman"],
                ("junior", "mid", "senior"),
            ),
            Role(
                "DevOps Engineer",
                "DevOps 엔지니어",
                (6500, 9500),
                [
                    ("Run our Kubernetes clusters on AWS", "AWS 기반 Kubernetes 클러스터 운영"),
                    ("Manage infrastructure as code with Terraform", "Terraform을 활용한 인프라 코드 관리"),
                    ("Improve CI/CD pipelines and release safety", "CI/CD 파이프라인 및 배포 안정성 개선"),
                    (
                        "Set up monitoring, alerting and incident reviews",
                        "모니터링·알림 체계 구축 및 장애 회고 진행",
                    ),
                ],
                ["AWS", "Kubernetes", "Terraform", "Docker", "Prometheus", "Linux"],
                ("mid", "senior", "lead"),
            ),
        ],
        requirements=[
            (
                "Degree in Computer Science or a related field, or equivalent experience",
                "컴퓨터공학 또는 관련 전공자, 혹은 그에 준하는 경력 보유자",
            ),
            (
                "Solid grasp of data structures, algorithms and testing",
                "자료구조, 알고리즘, 테스트에 대한 탄탄한 이해",
            ),
            ("Experience with Git and code review", "Git 사용 및 코드 리뷰 경험"),
            (
                "Able to explain technical trade-offs to non-engineers",
                "비개발 직군에게 기술적 판단을 설명할 수 있는 분",
            ),
            ("Comfortable working in English", "영어로 업무 소통이 가능한 분"),
        ],
        nice=[
            ("Experience in fintech or e-commerce", "핀테크 또는 이커머스 도메인 경험"),
            ("Open-source contributions", "오픈소스 기여 경험"),
            ("Korean language skills", "한국어 능통자"),
            ("AWS or GCP certification", "AWS 또는 GCP 자격증 보유"),
        ],
        skills=["Git", "Linux", "Docker", "SQL", "AWS", "CI/CD"],
        benefits=[
            ("Latest MacBook Pro", "최신 맥북 프로 지급"),
            ("Conference budget", "컨퍼런스 참가비 지원"),
        ],
        remote_ok=True,
    ),
    Industry(
        name=("Finance", "금융"),
        desc=("banking and wealth management", "은행 및 자산관리"),
        companies=[
            ("Marina Capital Partners", "마리나 캐피탈 파트너스"),
            ("Temasek Road Securities", "테마섹로드 증권"),
            ("Seoul-Straits Bank Singapore Branch", "서울스트레이츠은행 싱가포르 지점"),
            ("Peranakan Wealth Advisory", "페라나칸 웰스 어드바이저리"),
        ],
        missions=[
            (
                "we manage investments for families and businesses across Asia",
                "아시아 전역의 가문과 기업을 위한 자산을 운용하고 있습니다",
            ),
            (
                "we connect Korean investors with opportunities in Southeast Asian markets",
                "한국 투자자와 동남아시아 시장의 투자 기회를 연결하고 있습니다",
            ),
        ],
        teams=[
            ("Finance", "재무"),
            ("Risk", "리스크 관리"),
            ("Operations", "운영"),
            ("Private Banking", "프라이빗 뱅킹"),
        ],
        roles=[
            Role(
                "Accountant",
                "회계 담당자",
                (4000, 6000),
                [
                    ("Prepare monthly management accounts", "월별 관리 회계 보고서 작성"),
                    ("Handle accounts payable and receivable", "매입·매출 채권 및 채무 관리"),
                    (
                        "Reconcile bank statements and intercompany balances",
                        "은행 잔고 및 관계사 간 거래 대사",
                    ),
                    ("Support the year-end audit and GST filings", "연말 감사 및 GST 신고 지원"),
                ],
                ["Xero", "SAP", "Excel", "SFRS", "GST"],
                ("junior", "mid", "senior"),
            ),
            Role(
                "Financial Analyst",
                "재무 분석가",
                (5500, 8000),
                [
                    ("Build budgets, forecasts and variance analyses", "예산 수립, 실적 전망 및 차이 분석"),
                    ("Prepare board and investor reporting packs", "이사회 및 투자자 보고 자료 작성"),
                    ("Model the business case for new projects", "신규 프로젝트 사업성 분석 모델링"),
                    ("Track costs and suggest savings", "비용 추적 및 절감 방안 제안"),
                ],
                ["Excel", "Power BI", "Financial modelling", "SQL"],
            ),
            Role(
                "Compliance Officer",
                "컴플라이언스 담당자",
                (6000, 9000),
                [
                    ("Run KYC and AML checks on new clients", "신규 고객 KYC 및 AML 심사 수행"),
                    ("Keep policies in line with MAS regulations", "MAS 규정에 맞춘 내부 정책 관리"),
                    ("Train staff on compliance topics", "임직원 대상 컴플라이언스 교육 진행"),
                    ("Report suspicious transactions", "의심 거래 보고 및 사후 관리"),
                ],
                ["KYC", "AML", "MAS regulations", "Risk assessment"],
                ("mid", "senior"),
            ),
            Role(
                "Relationship Manager",
                "고객 자산관리 매니저",
                (7000, 12000),
                [
                    ("Grow and look after a book of high-net-worth clients", "고액 자산가 고객 발굴 및 관리"),
                    (
                        "Advise clients on portfolios with the investment team",
                        "투자팀과 함께 고객 포트폴리오 자문",
                    ),
                    (
                        "Meet sales targets while staying within risk limits",
                        "리스크 한도 내에서 영업 목표 달성",
                    ),
                    ("Host client seminars in Singapore and Seoul", "싱가포르·서울 고객 세미나 진행"),
                ],
                ["Wealth management", "CRM", "Client advisory"],
                ("mid", "senior"),
            ),
        ],
        requirements=[
            ("Degree in Accounting, Finance or Economics", "회계, 재무 또는 경제학 전공자"),
            ("Strong attention to detail and numbers", "숫자와 세부 사항에 대한 높은 정확성"),
            ("Advanced Excel skills", "엑셀 고급 활용 능력"),
            ("Good written and spoken English", "영어 문서 작성 및 회화 능력"),
            ("Able to meet monthly closing deadlines", "월 결산 일정을 준수할 수 있는 분"),
        ],
        nice=[
            ("ACCA, CPA or CFA qualification", "ACCA, CPA 또는 CFA 자격 보유자"),
            ("Experience with Korean clients or head offices", "한국 고객 또는 한국 본사 대응 경험"),
            ("Big Four audit background", "Big 4 회계법인 감사 경력"),
        ],
        skills=["Excel", "IFRS", "Bloomberg", "Accounting"],
        benefits=[("Professional exam sponsorship", "전문 자격시험 응시료 지원")],
        remote_ok=True,
    ),
    Industry(
        name=("Hospitality", "호텔/관광"),
        desc=("hotels and travel", "호텔 및 여행"),
        companies=[
            ("Sentosa Bay Resort", "센토사 베이 리조트"),
            ("The Merlion Grand Hotel", "머라이언 그랜드 호텔"),
            ("K-Stay Hospitality Pte. Ltd.", "케이스테이 호스피탈리티"),
            ("Lagoon Travel & Tours", "라군 여행사"),
        ],
        missions=[
            (
                "we run boutique hotels loved by travellers from Korea and Japan",
                "한국과 일본 여행객에게 사랑받는 부티크 호텔을 운영합니다",
            ),
            (
                "we design tours that show visitors the real Singapore",
                "여행객에게 진짜 싱가포르를 보여 주는 투어를 기획합니다",
            ),
        ],
        teams=[
            ("Front Office", "프론트 오피스"),
            ("Guest Relations", "고객 관리"),
            ("Housekeeping", "하우스키핑"),
        ],
        roles=[
            Role(
                "Front Desk Agent",
                "프론트 데스크 직원",
                (2600, 3400),
                [
                    ("Check guests in and out quickly and warmly", "신속하고 친절한 체크인·체크아웃 응대"),
                    ("Answer calls, emails and booking requests", "전화, 이메일 및 예약 문의 응대"),
                    ("Resolve guest complaints on the spot", "고객 불만 사항 현장 해결"),
                    ("Handle cash and card payments accurately", "현금 및 카드 결제 정확히 처리"),
                ],
                ["Opera PMS", "Customer service", "Cash handling"],
                ("junior", "mid"),
            ),
            Role(
                "Tour Guide",
                "투어 가이드",
                (2800, 3800),
                [
                    ("Lead day tours for Korean-speaking groups", "한국어 단체 관광객 대상 일일 투어 인솔"),
                    ("Explain local history, food and culture", "싱가포르 역사, 음식, 문화 해설"),
                    ("Keep groups safe and on schedule", "고객 안전 관리 및 일정 준수"),
                    ("Coordinate with coach drivers and restaurants", "전세버스 기사 및 식당과 일정 조율"),
                ],
                ["Tour guiding", "First aid", "Korean"],
                ("junior", "mid"),
                hourly=True,
            ),
            Role(
                "Housekeeping Supervisor",
                "하우스키핑 슈퍼바이저",
                (2800, 3800),
                [
                    ("Inspect rooms against brand standards", "브랜드 기준에 따른 객실 점검"),
                    ("Plan daily room attendant assignments", "룸 어텐던트 일일 업무 배정"),
                    ("Track linen and amenity stock", "린넨 및 어메니티 재고 관리"),
                    ("Train new housekeeping staff", "신규 하우스키핑 직원 교육"),
                ],
                ["Housekeeping", "Team supervision", "Inventory"],
                ("mid", "senior"),
            ),
            Role(
                "Hotel Sales Manager",
                "호텔 세일즈 매니저",
                (5000, 7500),
                [
                    ("Win corporate and MICE accounts", "기업 고객 및 MICE 행사 유치"),
                    ("Work with Korean travel agencies on group bookings", "한국 여행사와 단체 예약 협력"),
                    ("Plan seasonal packages with the revenue team", "레비뉴팀과 시즌별 패키지 기획"),
                    ("Report monthly on pipeline and results", "월별 영업 현황 및 실적 보고"),
                ],
                ["B2B sales", "Negotiation", "Salesforce"],
                ("mid", "senior"),
            ),
        ],
        requirements=[
            ("At least a Diploma in Hospitality or Tourism", "호텔·관광 관련 전문학사 이상"),
            ("Friendly, well-groomed and calm under pressure", "밝은 인상과 단정한 용모, 침착한 응대 능력"),
            ("Willing to work shifts, weekends and public holidays", "교대 근무 및 주말·공휴일 근무 가능자"),
            ("Good English; a second language is an advantage", "영어 소통 가능자 (제2외국어 가능 시 우대)"),
        ],
        nice=[
            ("Korean or Japanese language skills", "한국어 또는 일본어 가능자"),
            ("Experience in a 5-star hotel", "5성급 호텔 근무 경험"),
            ("Singapore Tourist Guide licence", "싱가포르 관광 가이드 라이선스 소지자"),
        ],
        skills=["Customer service", "English", "Problem solving"],
        benefits=[("Duty meals", "근무 중 식사 제공"), ("Hotel stays at staff rates", "직원 요금 호텔 숙박")],
        shifts=True,
    ),
    Industry(
        name=("Healthcare", "의료/헬스케어"),
        desc=("healthcare", "의료 서비스"),
        companies=[
            ("Novena Family Clinic", "노베나 패밀리 클리닉"),
            ("Han River Medical Centre Singapore", "한강 메디컬센터 싱가포르"),
            ("Evergreen Dental Group", "에버그린 치과 그룹"),
            ("CareBridge Home Nursing", "케어브릿지 방문간호"),
        ],
        missions=[
            (
                "we give families in the east of Singapore a clinic they can trust",
                "싱가포르 동부 지역 가족들이 믿고 찾는 병원을 만들고 있습니다",
            ),
            (
                "we provide medical care in Korean for expatriates in Singapore",
                "싱가포르 거주 외국인을 위해 한국어 진료 서비스를 제공합니다",
            ),
        ],
        teams=[("Clinic", "외래"), ("Nursing", "간호"), ("Patient Services", "환자 서비스")],
        roles=[
            Role(
                "Staff Nurse",
                "간호사",
                (3800, 5200),
                [
                    (
                        "Assess patients and give medication as prescribed",
                        "환자 상태 평가 및 처방에 따른 투약",
                    ),
                    ("Assist doctors with minor procedures", "간단한 시술 시 의사 보조"),
                    ("Keep accurate clinical records", "정확한 진료 기록 작성 및 관리"),
                    ("Educate patients on care after treatment", "치료 후 관리 방법에 대한 환자 교육"),
                ],
                ["Patient care", "BLS", "Clinical documentation"],
                ("junior", "mid", "senior"),
            ),
            Role(
                "Clinic Assistant",
                "병원 코디네이터",
                (2400, 3200),
                [
                    ("Register patients and manage appointments", "환자 접수 및 예약 관리"),
                    ("Process insurance claims and payments", "보험 청구 및 수납 업무"),
                    ("Interpret between Korean patients and doctors", "한국인 환자와 의료진 간 통역"),
                    ("Keep the waiting area and records in order", "대기 공간 및 서류 정리"),
                ],
                ["Clinic software", "Insurance claims", "Korean"],
                ("junior", "mid"),
            ),
            Role(
                "Physiotherapist",
                "물리치료사",
                (4500, 6500),
                [
                    ("Assess and treat musculoskeletal injuries", "근골격계 손상 평가 및 치료"),
                    ("Design home exercise programmes", "가정용 운동 프로그램 설계"),
                    ("Track patient progress and adjust treatment", "환자 회복 경과 추적 및 치료 조정"),
                    ("Run group rehab classes", "그룹 재활 운동 수업 진행"),
                ],
                ["Manual therapy", "Rehabilitation", "Sports injuries"],
            ),
            Role(
                "Dental Assistant",
                "치과 위생사",
                (2600, 3600),
                [
                    ("Prepare treatment rooms and sterilise instruments", "진료실 준비 및 기구 멸균"),
                    ("Assist the dentist during procedures", "진료 중 치과의사 보조"),
                    ("Take X-rays and update patient charts", "엑스레이 촬영 및 차트 기록"),
                    ("Explain oral hygiene to patients", "환자 구강 위생 교육"),
                ],
                ["Sterilisation", "Dental radiography", "Chairside assisting"],
                ("junior", "mid"),
            ),
        ],
        requirements=[
            (
                "Registered with the relevant Singapore council (SNB, AHPC or SDC)",
                "싱가포르 관련 협회(SNB, AHPC, SDC) 등록 또는 등록 가능자",
            ),
            ("Valid BCLS certificate", "유효한 BCLS 자격 보유"),
            ("Caring and patient with people of all ages", "모든 연령대의 환자를 배려하는 태도"),
            ("Able to work some Saturdays", "격주 토요일 근무 가능자"),
        ],
        nice=[
            ("Korean language skills", "한국어 능통자"),
            ("Experience in a private clinic", "개인 병원 근무 경험"),
            ("Korean nursing or dental licence", "한국 간호사 또는 치과위생사 면허 보유자"),
        ],
        skills=["Patient care", "Infection control", "Communication"],
        benefits=[("Shift allowance", "교대 근무 수당"), ("Medical benefits for family", "가족 의료비 지원")],
        shifts=True,
    ),
    Industry(
        name=("Logistics", "물류"),
        desc=("logistics and supply-chain", "물류 및 공급망"),
        companies=[
            ("Merlion Logistics Pte. Ltd.", "머라이언 로지스틱스"),
            ("PortLink Freight", "포트링크 프레이트"),
            ("Hansung Express Asia", "한성익스프레스 아시아"),
            ("Tuas Cold Chain Pte. Ltd.", "투아스 콜드체인"),
        ],
        missions=[
            (
                "we move Korean consumer goods into Southeast Asia by sea, air and road",
                "해상·항공·육상 운송으로 한국 소비재를 동남아시아 시장에 공급합니다",
            ),
            (
                "we run temperature-controlled warehouses for food and pharma clients",
                "식품·제약 고객을 위한 온도 관리 창고를 운영합니다",
            ),
        ],
        teams=[("Warehouse", "창고 운영"), ("Freight", "포워딩"), ("Transport", "배송")],
        roles=[
            Role(
                "Logistics Coordinator",
                "물류 코디네이터",
                (3200, 4500),
                [
                    ("Book shipments and track them to delivery", "선적 예약 및 배송 완료까지 추적"),
                    ("Prepare shipping documents and customs permits", "선적 서류 및 통관 허가 준비"),
                    ("Update customers on delays and changes", "지연 및 변경 사항 고객 안내"),
                    ("Check carrier invoices", "운송사 청구서 검토"),
                ],
                ["TradeNet", "Incoterms", "Excel", "Freight forwarding"],
            ),
            Role(
                "Warehouse Supervisor",
                "창고 관리자",
                (3000, 4200),
                [
                    (
                        "Lead a team of pickers, packers and forklift drivers",
                        "피킹·패킹 직원 및 지게차 기사 관리",
                    ),
                    ("Run cycle counts and keep stock accurate", "순환 재고 조사 및 재고 정확도 관리"),
                    ("Enforce workplace safety rules", "작업장 안전 수칙 관리 감독"),
                    ("Plan inbound and outbound schedules", "입출고 일정 계획"),
                ],
                ["WMS", "Forklift licence", "Inventory control", "5S"],
                ("mid", "senior"),
            ),
            Role(
                "Delivery Driver",
                "배송 기사",
                (2400, 3200),
                [
                    ("Deliver parcels on planned routes across Singapore", "싱가포르 전역 지정 경로 배송"),
                    ("Load and unload the van safely", "차량 상·하차 안전 작업"),
                    ("Collect proof of delivery in the app", "배송 앱으로 수령 확인 처리"),
                    ("Keep the vehicle clean and report defects", "차량 청결 유지 및 이상 보고"),
                ],
                ["Class 3 driving licence", "Route planning"],
                ("junior", "mid"),
                hourly=True,
            ),
            Role(
                "Supply Chain Planner",
                "공급망 기획 담당자",
                (4500, 6500),
                [
                    ("Forecast demand with the sales team", "영업팀과 수요 예측"),
                    ("Set reorder points and safety stock", "재주문 시점 및 안전 재고 설정"),
                    ("Coordinate with suppliers in Korea and China", "한국·중국 공급업체와 일정 조율"),
                    ("Report on service levels and stock cover", "서비스 수준 및 재고 일수 보고"),
                ],
                ["SAP", "Demand planning", "Excel", "Power BI"],
            ),
        ],
        requirements=[
            ("At least 2 years of logistics experience", "물류 관련 경력 2년 이상"),
            ("Organised and able to juggle many shipments", "다수의 화물을 동시에 관리할 수 있는 꼼꼼함"),
            ("Basic Excel skills", "엑셀 기본 활용 가능자"),
            ("Willing to work in Tuas or Changi", "투아스 또는 창이 지역 근무 가능자"),
        ],
        nice=[
            ("Korean language skills for dealing with head office", "한국 본사 소통을 위한 한국어 능력"),
            ("Experience with cold-chain goods", "냉장·냉동 화물 취급 경험"),
            ("Forklift licence", "지게차 면허 소지자"),
        ],
        skills=["Excel", "Inventory management", "Customs"],
        benefits=[("Transport provided from MRT stations", "MRT 역 셔틀버스 제공")],
        shifts=True,
    ),
    Industry(
        name=("Construction", "건설/엔지니어링"),
        desc=("construction and engineering", "건설 및 엔지니어링"),
        companies=[
            ("Daehan E&C Singapore", "대한건설 싱가포르 지사"),
            ("Keppel Point Builders", "케펠포인트 빌더스"),
            ("Orchard Civil Engineering", "오차드 토목엔지니어링"),
            ("Seojin MEP Services", "서진 MEP 서비스"),
        ],
        missions=[
            (
                "we build MRT stations, hospitals and public housing across Singapore",
                "싱가포르 전역의 MRT 역사, 병원, 공공주택을 시공합니다",
            ),
            (
                "we install mechanical and electrical systems in commercial buildings",
                "상업용 건물의 기계·전기 설비를 시공합니다",
            ),
        ],
        teams=[("Project", "프로젝트"), ("Site", "현장"), ("Design", "설계")],
        roles=[
            Role(
                "Site Engineer",
                "현장 엔지니어",
                (4200, 6000),
                [
                    ("Supervise daily site work and subcontractors", "일일 현장 작업 및 협력업체 관리"),
                    ("Check work against drawings and specifications", "도면 및 시방서 기준 시공 검측"),
                    ("Prepare progress reports and method statements", "공정 보고서 및 시공 계획서 작성"),
                    ("Coordinate inspections with consultants", "감리단과 검측 일정 조율"),
                ],
                ["AutoCAD", "MS Project", "Site supervision"],
            ),
            Role(
                "Safety Officer",
                "안전 관리자",
                (3800, 5200),
                [
                    ("Run daily toolbox meetings", "매일 안전 조회(TBM) 진행"),
                    ("Inspect the site and stop unsafe work", "현장 안전 점검 및 위험 작업 중지"),
                    ("Investigate incidents and near misses", "사고 및 아차사고 조사"),
                    ("Keep MOM safety records up to date", "MOM 안전 관련 서류 관리"),
                ],
                ["WSH", "Risk assessment", "bizSAFE"],
            ),
            Role(
                "Quantity Surveyor",
                "공무 담당자",
                (4500, 6800),
                [
                    ("Prepare cost estimates and bills of quantities", "공사비 견적 및 물량 산출"),
                    ("Evaluate subcontractor claims and variations", "협력업체 기성 및 설계 변경 검토"),
                    ("Track project costs against budget", "예산 대비 공사비 관리"),
                    ("Support tender submissions", "입찰 서류 작성 지원"),
                ],
                ["CostX", "Excel", "Contract administration"],
            ),
            Role(
                "M&E Engineer",
                "기계설비 엔지니어",
                (4500, 6500),
                [
                    (
                        "Coordinate ACMV, plumbing and electrical installation",
                        "공조, 배관, 전기 설비 시공 조율",
                    ),
                    ("Review shop drawings and submittals", "시공 상세도 및 자재 승인 서류 검토"),
                    ("Test and commission building systems", "설비 시운전 및 성능 시험"),
                    ("Solve clashes with the BIM team", "BIM팀과 간섭 사항 해결"),
                ],
                ["ACMV", "Revit", "BIM", "Testing and commissioning"],
            ),
        ],
        requirements=[
            (
                "Degree or Diploma in Civil, Mechanical or Electrical Engineering",
                "토목, 기계 또는 전기공학 전공 (학사 또는 전문학사)",
            ),
            ("At least 3 years of site experience in Singapore", "싱가포르 현장 경력 3년 이상"),
            ("Knowledge of BCA and MOM requirements", "BCA 및 MOM 규정에 대한 이해"),
            ("Able to read construction drawings", "시공 도면 해독 가능자"),
        ],
        nice=[
            ("Experience on LTA or HDB projects", "LTA 또는 HDB 프로젝트 경험"),
            ("Korean language skills for head-office reporting", "본사 보고를 위한 한국어 능력"),
            ("Professional Engineer (PE) registration", "PE(기술사) 등록자"),
        ],
        skills=["AutoCAD", "Construction", "Site management"],
        benefits=[
            ("Site allowance", "현장 수당"),
            ("Company housing for overseas hires", "해외 채용자 사택 제공"),
        ],
    ),
    Industry(
        name=("Education", "교육"),
        desc=("education", "교육"),
        companies=[
            ("Bright Minds Learning Centre", "브라이트마인즈 러닝센터"),
            ("Hangeul House Language School", "한글하우스 어학원"),
            ("Little Explorers Preschool", "리틀익스플로러스 유치원"),
            ("CodeSprout Academy", "코드스프라우트 아카데미"),
        ],
        missions=[
            (
                "we teach Korean language and culture to learners of all ages",
                "모든 연령의 학습자에게 한국어와 한국 문화를 가르칩니다",
            ),
            (
                "we help children build confidence through small-group classes",
                "소규모 수업으로 아이들의 자신감을 키워 줍니다",
            ),
        ],
        teams=[("Academic", "교육"), ("Curriculum", "커리큘럼"), ("Student Services", "학생 관리")],
        roles=[
            Role(
                "Korean Language Teacher",
                "한국어 강사",
                (3500, 5000),
                [
                    ("Teach Korean to adult and teenage classes", "성인 및 청소년 대상 한국어 수업"),
                    ("Prepare lesson plans and TOPIK practice material", "수업 계획 및 TOPIK 대비 자료 준비"),
                    ("Give learners regular feedback", "학습자에게 정기적인 피드백 제공"),
                    ("Run cultural workshops and events", "한국 문화 체험 행사 진행"),
                ],
                ["TOPIK", "Lesson planning", "Classroom management"],
                ("junior", "mid", "senior"),
                hourly=True,
            ),
            Role(
                "Preschool Teacher",
                "유치원 교사",
                (3000, 4200),
                [
                    ("Plan play-based lessons for children aged 3 to 6", "만 3~6세 대상 놀이 중심 수업 계획"),
                    ("Observe and record each child's development", "아동별 발달 관찰 및 기록"),
                    ("Keep parents informed through the school app", "학부모 앱을 통한 소통"),
                    ("Keep the classroom safe and tidy", "교실 안전 및 위생 관리"),
                ],
                ["Early childhood education", "ECDA certification"],
                ("junior", "mid"),
            ),
            Role(
                "Coding Instructor",
                "코딩 강사",
                (3500, 5000),
                [
                    (
                        "Teach Python and Scratch to students aged 8 to 16",
                        "만 8~16세 학생 대상 파이썬·스크래치 수업",
                    ),
                    ("Guide students through their own projects", "학생 개인 프로젝트 지도"),
                    ("Improve course material each term", "학기마다 교재 개선"),
                    ("Coach teams for coding competitions", "코딩 대회 참가팀 지도"),
                ],
                ["Python", "Scratch", "Teaching"],
                ("junior", "mid"),
                hourly=True,
            ),
            Role(
                "Academic Coordinator",
                "교무 코디네이터",
                (3800, 5200),
                [
                    ("Schedule classes, teachers and rooms", "수업, 강사, 강의실 일정 편성"),
                    ("Handle enrolment and parent enquiries", "수강 등록 및 학부모 문의 응대"),
                    ("Track attendance and results", "출결 및 성적 관리"),
                    ("Support teacher hiring and onboarding", "강사 채용 및 온보딩 지원"),
                ],
                ["Scheduling", "CRM", "Excel"],
                ("mid", "senior"),
            ),
        ],
        requirements=[
            ("Degree in Education or a related field", "교육학 또는 관련 전공 학사 이상"),
            ("Teaching experience with the relevant age group", "해당 연령대 교육 경험"),
            ("Patient, encouraging and well organised", "인내심 있고 격려하는 태도, 체계적인 업무 처리"),
            ("Able to teach some evenings and weekends", "평일 저녁 및 주말 수업 가능자"),
        ],
        nice=[
            ("Korean language teaching certificate", "한국어교원 자격증 소지자"),
            ("Experience with Singapore's MOE syllabus", "싱가포르 MOE 교육과정 이해"),
            ("Bilingual in Korean and English", "한국어·영어 이중 언어 가능자"),
        ],
        skills=["Teaching", "Communication", "Lesson planning"],
        benefits=[("School holiday leave", "방학 기간 휴가")],
    ),
    Industry(
        name=("Retail", "유통/리테일"),
        desc=("retail", "유통"),
        companies=[
            ("Seoul Mart Singapore", "서울마트 싱가포르"),
            ("Bugis Street Goods Co.", "부기스스트리트 굿즈"),
            ("K-Style Fashion Pte. Ltd.", "케이스타일 패션"),
            ("HomeNest Living", "홈네스트 리빙"),
        ],
        missions=[
            (
                "we bring Korean groceries and snacks to homes across Singapore",
                "싱가포르 가정에 한국 식료품과 간식을 전합니다",
            ),
            (
                "we run fashion stores in Orchard, Bugis and Jurong",
                "오차드, 부기스, 주롱에서 패션 매장을 운영합니다",
            ),
        ],
        teams=[("Store", "매장"), ("Merchandising", "상품 기획"), ("E-commerce", "이커머스")],
        roles=[
            Role(
                "Retail Assistant",
                "매장 직원",
                (2200, 2800),
                [
                    ("Greet customers and help them find products", "고객 응대 및 상품 안내"),
                    ("Run the cashier and handle returns", "계산 및 교환·환불 처리"),
                    ("Restock shelves and check expiry dates", "상품 진열 및 유통기한 점검"),
                    ("Keep the store clean and well presented", "매장 청결 및 진열 상태 유지"),
                ],
                ["POS", "Customer service", "Visual merchandising"],
                ("junior", "mid"),
                hourly=True,
            ),
            Role(
                "Store Manager",
                "매장 점장",
                (4000, 5500),
                [
                    ("Lead the store team and plan rosters", "매장 직원 관리 및 근무표 작성"),
                    ("Hit monthly sales and margin targets", "월 매출 및 이익 목표 달성"),
                    ("Control stock, shrinkage and orders", "재고, 손실 및 발주 관리"),
                    ("Train staff on service and product knowledge", "서비스 및 상품 지식 교육"),
                ],
                ["Retail management", "P&L", "Rostering"],
                ("mid", "senior"),
            ),
            Role(
                "Merchandiser",
                "상품 기획자(MD)",
                (4000, 6000),
                [
                    (
                        "Choose products and negotiate with Korean suppliers",
                        "상품 선정 및 한국 공급업체와 가격 협상",
                    ),
                    ("Plan promotions and seasonal ranges", "프로모션 및 시즌 상품 기획"),
                    ("Analyse sales by store and category", "매장·카테고리별 판매 분석"),
                    ("Manage product listings online", "온라인 상품 등록 관리"),
                ],
                ["Category management", "Excel", "Shopify", "Negotiation"],
            ),
            Role(
                "E-commerce Executive",
                "이커머스 담당자",
                (3500, 5000),
                [
                    ("Run our Shopee, Lazada and web stores", "쇼피, 라자다 및 자사몰 운영"),
                    ("Plan campaigns for 9.9, 11.11 and 12.12", "9.9, 11.11, 12.12 캠페인 기획"),
                    ("Answer customer chats and reviews", "고객 채팅 및 리뷰 응대"),
                    ("Report weekly on traffic and conversion", "주간 유입 및 전환율 보고"),
                ],
                ["Shopee", "Lazada", "Shopify", "Google Analytics"],
            ),
        ],
        requirements=[
            ("GCE 'O' Level or above", "고등학교 졸업 이상"),
            ("Customer-first attitude", "고객 중심의 서비스 마인드"),
            ("Able to work weekends and public holidays", "주말 및 공휴일 근무 가능자"),
            ("Basic computer skills", "기본적인 컴퓨터 활용 능력"),
        ],
        nice=[
            ("Able to speak Korean with customers", "한국어로 고객 응대 가능자"),
            ("Experience in grocery or fashion retail", "식품 또는 패션 리테일 경험"),
        ],
        skills=["Customer service", "Sales", "Inventory"],
        benefits=[("Staff discount of 20%", "직원 할인 20%")],
        shifts=True,
    ),
    Industry(
        name=("Food & Beverage", "식음료(F&B)"),
        desc=("food and beverage", "외식"),
        companies=[
            ("Hansik Kitchen Pte. Ltd.", "한식키친"),
            ("Kampong Kopi Roasters", "캄퐁 코피 로스터스"),
            ("Seoul Bibimbap House", "서울비빔밥하우스"),
            ("Tanjong Bakehouse", "탄종 베이크하우스"),
        ],
        missions=[
            (
                "we serve home-style Korean food in six outlets across Singapore",
                "싱가포르 6개 매장에서 집밥 스타일의 한식을 선보입니다",
            ),
            (
                "we roast our own coffee and bake everything in-house",
                "직접 로스팅한 커피와 매장에서 구운 빵을 판매합니다",
            ),
        ],
        teams=[("Kitchen", "주방"), ("Service", "홀"), ("Central Kitchen", "센트럴 키친")],
        roles=[
            Role(
                "Chef de Partie",
                "주방 파트장",
                (3000, 4200),
                [
                    ("Run your kitchen section during service", "영업 시간 중 담당 파트 운영"),
                    ("Prepare sauces, marinades and banchan", "소스, 양념 및 반찬 준비"),
                    ("Follow food safety and hygiene standards", "식품 안전 및 위생 기준 준수"),
                    ("Train commis cooks", "주방 보조 직원 교육"),
                ],
                ["Korean cuisine", "Food safety", "Knife skills"],
                ("mid", "senior"),
            ),
            Role(
                "Barista",
                "바리스타",
                (2300, 3000),
                [
                    ("Prepare espresso drinks and filter coffee", "에스프레소 음료 및 필터 커피 제조"),
                    ("Dial in the grinder every morning", "매일 아침 그라인더 세팅"),
                    ("Serve customers at the counter", "카운터 고객 응대"),
                    ("Clean and maintain the coffee machine", "커피 머신 청소 및 관리"),
                ],
                ["Latte art", "Espresso", "Customer service"],
                ("junior", "mid"),
                hourly=True,
            ),
            Role(
                "Service Crew",
                "홀 서빙 직원",
                (2000, 2600),
                [
                    ("Take orders and serve food", "주문 접수 및 음식 서빙"),
                    ("Explain dishes to guests new to Korean food", "한식이 처음인 손님에게 메뉴 설명"),
                    ("Set and clear tables", "테이블 세팅 및 정리"),
                    ("Help close the restaurant at night", "마감 정리 보조"),
                ],
                ["Customer service", "POS"],
                ("junior",),
                hourly=True,
            ),
            Role(
                "Outlet Manager",
                "매장 매니저",
                (4000, 5500),
                [
                    ("Run daily operations of the outlet", "매장 일일 운영 총괄"),
                    ("Manage staff rosters and labour costs", "직원 근무표 및 인건비 관리"),
                    ("Keep food cost and wastage under control", "식자재 원가 및 폐기율 관리"),
                    ("Handle guest feedback and online reviews", "고객 의견 및 온라인 리뷰 대응"),
                ],
                ["F&B operations", "Cost control", "Team leadership"],
                ("mid", "senior"),
            ),
        ],
        requirements=[
            ("Food Safety Course Level 1 certificate", "식품 안전 교육(Level 1) 수료"),
            ("Previous F&B experience", "F&B 근무 경험자"),
            ("Able to work split shifts, weekends and holidays", "분할 근무, 주말 및 공휴일 근무 가능자"),
            ("Team player with a positive attitude", "긍정적이고 협업을 잘하는 분"),
        ],
        nice=[
            ("Experience in a Korean restaurant", "한식당 근무 경험"),
            ("SCA barista certification", "SCA 바리스타 자격증 보유"),
        ],
        skills=["Food hygiene", "Teamwork", "Customer service"],
        benefits=[
            ("Staff meals on every shift", "근무 시 식사 제공"),
            ("Overtime paid", "초과 근무 수당 지급"),
        ],
        shifts=True,
    ),
    Industry(
        name=("Marketing", "마케팅/광고"),
        desc=("marketing and advertising", "마케팅 및 광고"),
        companies=[
            ("Hallyu Wave Media", "한류웨이브 미디어"),
            ("Pixel Kampong Agency", "픽셀캄퐁 에이전시"),
            ("BrightBay Communications", "브라이트베이 커뮤니케이션즈"),
            ("Ssam Creative Pte. Ltd.", "쌈크리에이티브"),
        ],
        missions=[
            (
                "we launch Korean brands in Singapore, Malaysia and Indonesia",
                "한국 브랜드의 싱가포르·말레이시아·인도네시아 진출을 돕습니다",
            ),
            (
                "we run social and performance campaigns for consumer brands",
                "소비재 브랜드의 소셜 및 퍼포먼스 캠페인을 운영합니다",
            ),
        ],
        teams=[("Brand", "브랜드"), ("Performance", "퍼포먼스"), ("Content", "콘텐츠")],
        roles=[
            Role(
                "Digital Marketing Executive",
                "디지털 마케팅 담당자",
                (3500, 5000),
                [
                    ("Run paid campaigns on Meta, Google and TikTok", "메타, 구글, 틱톡 광고 캠페인 운영"),
                    ("Track ROAS and report results to clients", "ROAS 분석 및 광고주 보고"),
                    ("Test creatives and landing pages", "광고 소재 및 랜딩 페이지 A/B 테스트"),
                    ("Manage monthly ad budgets", "월별 광고 예산 관리"),
                ],
                ["Meta Ads", "Google Ads", "GA4", "TikTok Ads"],
            ),
            Role(
                "Content Creator",
                "콘텐츠 크리에이터",
                (3200, 4500),
                [
                    (
                        "Plan and shoot short videos for Instagram and TikTok",
                        "인스타그램·틱톡용 숏폼 영상 기획 및 촬영",
                    ),
                    ("Write captions in English and Korean", "영어·한국어 캡션 작성"),
                    ("Work with influencers on brand collaborations", "인플루언서와 브랜드 협업 진행"),
                    ("Keep a content calendar", "콘텐츠 캘린더 관리"),
                ],
                ["Premiere Pro", "CapCut", "Copywriting", "Photography"],
                ("junior", "mid"),
            ),
            Role(
                "Brand Manager",
                "브랜드 매니저",
                (6000, 8500),
                [
                    ("Own the brand plan for Southeast Asia", "동남아시아 브랜드 전략 수립"),
                    ("Brief agencies and review creative work", "대행사 브리핑 및 크리에이티브 검토"),
                    ("Plan product launches with sales", "영업팀과 신제품 출시 기획"),
                    ("Track brand health and market share", "브랜드 인지도 및 시장 점유율 관리"),
                ],
                ["Brand strategy", "Market research", "Budgeting"],
                ("mid", "senior", "lead"),
            ),
            Role(
                "PR Executive",
                "홍보 담당자",
                (3500, 5000),
                [
                    ("Write press releases and media pitches", "보도자료 및 미디어 피칭 자료 작성"),
                    ("Build relationships with local journalists", "현지 기자 네트워크 관리"),
                    ("Organise launch events", "런칭 행사 기획 및 운영"),
                    ("Monitor media coverage", "언론 보도 모니터링"),
                ],
                ["Media relations", "Copywriting", "Event planning"],
            ),
        ],
        requirements=[
            ("Degree in Marketing, Communications or a related field", "마케팅, 커뮤니케이션 또는 관련 전공"),
            ("A portfolio or results you can show", "포트폴리오 또는 성과 자료 제출 가능자"),
            ("Excellent written English", "뛰어난 영어 작문 능력"),
            ("Comfortable with numbers and dashboards", "데이터와 대시보드 활용에 능숙한 분"),
        ],
        nice=[
            ("Korean language skills", "한국어 가능자"),
            ("Agency experience", "광고대행사 근무 경험"),
            ("Knowledge of K-beauty or K-food markets", "K-뷰티 또는 K-푸드 시장 이해"),
        ],
        skills=["Social media", "Canva", "Copywriting", "Analytics"],
        benefits=[("Hybrid work", "하이브리드 근무")],
        remote_ok=True,
    ),
    Industry(
        name=("Manufacturing", "제조"),
        desc=("electronics and precision manufacturing", "전자 및 정밀 제조"),
        companies=[
            ("Woodlands Precision Pte. Ltd.", "우드랜즈 정밀"),
            ("Samjin Electronics Singapore", "삼진전자 싱가포르"),
            ("Jurong Polymer Industries", "주롱 폴리머 산업"),
            ("Pioneer Semicon Services", "파이오니어 세미콘 서비스"),
        ],
        missions=[
            (
                "we make precision parts for semiconductor and medical equipment",
                "반도체 및 의료 장비용 정밀 부품을 생산합니다",
            ),
            (
                "we assemble and test electronic modules for global customers",
                "글로벌 고객사를 위한 전자 모듈을 조립·검사합니다",
            ),
        ],
        teams=[("Production", "생산"), ("Quality", "품질"), ("Maintenance", "설비 보전")],
        roles=[
            Role(
                "Production Supervisor",
                "생산 관리자",
                (3500, 5000),
                [
                    ("Lead shift operators to meet output targets", "교대조 작업자 관리 및 생산 목표 달성"),
                    ("Track yield, downtime and scrap", "수율, 비가동 시간 및 불량 관리"),
                    ("Run 5S and kaizen activities", "5S 및 개선 활동 추진"),
                    ("Write shift handover reports", "교대 인수인계 보고서 작성"),
                ],
                ["Lean manufacturing", "5S", "SAP PP"],
                ("mid", "senior"),
            ),
            Role(
                "Quality Engineer",
                "품질 엔지니어",
                (4500, 6500),
                [
                    (
                        "Investigate customer complaints with 8D reports",
                        "8D 보고서를 통한 고객 불만 원인 분석",
                    ),
                    ("Maintain the ISO 9001 quality system", "ISO 9001 품질 시스템 유지"),
                    ("Set up inspection plans for new parts", "신규 부품 검사 기준 수립"),
                    ("Audit suppliers", "협력업체 품질 감사"),
                ],
                ["ISO 9001", "SPC", "8D", "FMEA"],
            ),
            Role(
                "Maintenance Technician",
                "설비 보전 기술자",
                (2800, 4000),
                [
                    ("Carry out preventive maintenance on machines", "설비 예방 정비"),
                    ("Troubleshoot mechanical and electrical faults", "기계·전기 고장 진단 및 수리"),
                    ("Keep spare parts and maintenance logs", "예비 부품 및 정비 이력 관리"),
                    ("Support machine installation", "신규 설비 설치 지원"),
                ],
                ["PLC", "Pneumatics", "Electrical wiring"],
                ("junior", "mid", "senior"),
            ),
            Role(
                "Machine Operator",
                "생산직 오퍼레이터",
                (2000, 2600),
                [
                    ("Operate CNC and assembly machines", "CNC 및 조립 설비 운전"),
                    ("Check parts against drawings", "도면 기준 부품 검사"),
                    ("Record output and defects", "생산량 및 불량 기록"),
                    ("Keep the work area clean and safe", "작업장 정리 및 안전 유지"),
                ],
                ["CNC", "Measuring tools"],
                ("junior", "mid"),
                hourly=True,
            ),
        ],
        requirements=[
            (
                "Nitec or Diploma in Mechanical or Electrical Engineering",
                "기계·전기 관련 Nitec 또는 전문학사 이상",
            ),
            ("Willing to work rotating shifts", "교대 근무 가능자"),
            ("Experience in a cleanroom or factory", "클린룸 또는 공장 근무 경험"),
            ("Safety-conscious and careful", "안전 의식이 높고 꼼꼼한 분"),
        ],
        nice=[
            ("Experience with Korean customers or suppliers", "한국 고객사·협력사 대응 경험"),
            ("Six Sigma Green Belt", "식스시그마 그린벨트 보유"),
        ],
        skills=["Quality control", "Safety", "Troubleshooting"],
        benefits=[("Shift allowance", "교대 수당"), ("Free company transport", "통근 버스 제공")],
        shifts=True,
    ),
    Industry(
        name=("Beauty", "뷰티/화장품"),
        desc=("beauty and cosmetics", "뷰티 및 화장품"),
        companies=[
            ("Glow Seoul Cosmetics Pte. Ltd.", "글로우서울 코스메틱"),
            ("Jeju Botanics Asia", "제주보타닉스 아시아"),
            ("Haneul Skin Clinic", "하늘 피부과"),
            ("Velvet Lab Beauty", "벨벳랩 뷰티"),
        ],
        missions=[
            (
                "we bring Korean skincare to counters and online shops across Southeast Asia",
                "동남아시아 매장과 온라인몰에 한국 스킨케어 제품을 선보입니다",
            ),
            (
                "we run aesthetic clinics known for gentle, natural results",
                "자연스러운 결과로 알려진 에스테틱 클리닉을 운영합니다",
            ),
        ],
        teams=[("Retail", "리테일"), ("Sales", "영업"), ("Marketing", "마케팅")],
        roles=[
            Role(
                "Beauty Advisor",
                "뷰티 어드바이저",
                (2400, 3200),
                [
                    ("Advise customers on skincare routines", "고객 피부 타입별 스킨케어 상담"),
                    ("Demonstrate products at the counter", "매장 제품 시연"),
                    ("Meet monthly sales targets", "월별 판매 목표 달성"),
                    ("Keep testers and displays tidy", "테스터 및 진열 관리"),
                ],
                ["Skincare", "Sales", "Makeup"],
                ("junior", "mid"),
                hourly=True,
            ),
            Role(
                "Key Account Executive",
                "거래처 영업 담당자",
                (4000, 6000),
                [
                    (
                        "Manage accounts with Watsons, Guardian and Sephora",
                        "왓슨스, 가디언, 세포라 거래처 관리",
                    ),
                    ("Negotiate listings and promotions", "입점 및 프로모션 협상"),
                    ("Forecast orders with the Korean head office", "한국 본사와 발주 물량 협의"),
                    ("Visit stores and check execution", "매장 방문 및 진열 상태 점검"),
                ],
                ["Key account management", "Negotiation", "Excel"],
            ),
            Role(
                "Aesthetic Therapist",
                "피부 관리사",
                (2600, 3600),
                [
                    ("Perform facials and skin treatments", "페이셜 및 피부 관리 시술"),
                    (
                        "Assess client skin and recommend treatment plans",
                        "고객 피부 상태 진단 및 관리 계획 제안",
                    ),
                    ("Sterilise equipment and treatment rooms", "기기 및 관리실 위생 관리"),
                    ("Keep client records confidential", "고객 기록 보안 유지"),
                ],
                ["Facial treatments", "CIDESCO", "Customer care"],
                ("junior", "mid", "senior"),
            ),
        ],
        requirements=[
            ("Passion for skincare and beauty", "스킨케어와 뷰티에 대한 관심과 열정"),
            ("Well-groomed and confident with customers", "단정한 용모와 자신감 있는 고객 응대"),
            ("Retail or sales experience", "리테일 또는 영업 경험"),
            ("Able to work weekends", "주말 근무 가능자"),
        ],
        nice=[
            ("Korean language skills", "한국어 가능자"),
            ("Beauty therapy certification", "피부미용 자격증 보유"),
        ],
        skills=["Skincare", "Customer service", "Sales"],
        benefits=[("Free products every quarter", "분기별 제품 지급"), ("Sales commission", "판매 인센티브")],
    ),
]


# --- shared pools ------------------------------------------------------------------------------------

AREAS: list[Pair] = [
    ("Raffles Place", "래플스 플레이스"),
    ("Marina Bay", "마리나 베이"),
    ("Tanjong Pagar", "탄종 파가"),
    ("One-North", "원노스"),
    ("Jurong East", "주롱 이스트"),
    ("Tampines", "탐피네스"),
    ("Woodlands", "우드랜즈"),
    ("Changi Business Park", "창이 비즈니스 파크"),
    ("Paya Lebar", "파야 레바"),
    ("Orchard Road", "오차드 로드"),
    ("Bugis", "부기스"),
    ("Tuas", "투아스"),
    ("Novena", "노베나"),
    ("Punggol", "풍골"),
    ("Ang Mo Kio", "앙모키오"),
    ("Kallang", "칼랑"),
    ("Clementi", "클레멘티"),
    ("Sentosa", "센토사"),
    ("HarbourFront", "하버프론트"),
    ("Pioneer", "파이오니어"),
]
ABROAD = ["Kuala Lumpur, Malaysia", "Jakarta, Indonesia", "Ho Chi Minh City, Vietnam", "Bangkok, Thailand"]

LEVELS = {  # level -> (pay factor, English title prefix/suffix, Korean prefix/suffix, years)
    "intern": (0.35, "{t} Intern", "{t} 인턴", 0),
    "junior": (0.8, "Junior {t}", "주니어 {t}", 1),
    "mid": (1.0, "{t}", "{t}", 3),
    "senior": (1.35, "Senior {t}", "시니어 {t}", 6),
    "lead": (1.65, "Lead {t}", "리드 {t}", 8),
}
EXPERIENCE = {
    "intern": ("Internship (students welcome)", "인턴 (재학생 가능)"),
    "junior": ("Entry level / 0-2 years", "신입 또는 경력 2년 이하"),
    "mid": ("3-5 years", "경력 3~5년"),
    "senior": ("5+ years", "경력 5년 이상"),
    "lead": ("8+ years, including team leadership", "경력 8년 이상 (팀 리딩 경험 포함)"),
}
EDUCATION: list[Pair] = [
    ("Bachelor's degree", "학사 이상"),
    ("Diploma or above", "전문학사 이상"),
    ("No formal requirement", "학력 무관"),
    ("GCE 'O' / 'A' Level", "고졸 이상"),
    ("Master's degree preferred", "석사 우대"),
]
EMPLOYMENT: dict[str, Pair] = {
    "full": ("Full-time", "정규직"),
    "contract": ("Contract (12 months, renewable)", "계약직 (12개월, 연장 가능)"),
    "part": ("Part-time", "파트타임"),
    "intern": ("Internship (6 months)", "인턴십 (6개월)"),
    "temp": ("Temporary (3 months)", "단기 (3개월)"),
}
HOURS: list[Pair] = [
    ("Monday to Friday, 9am to 6pm", "월~금, 09:00~18:00"),
    ("5 days a week, 8.30am to 5.30pm", "주 5일, 08:30~17:30"),
    ("Flexible hours with core time 10am to 4pm", "유연 근무제 (코어 타임 10:00~16:00)"),
    ("44 hours a week over 5.5 days", "주 44시간, 주 5.5일 근무"),
]
SHIFT_HOURS: list[Pair] = [
    ("Rotating shifts, 5 days a week", "교대 근무, 주 5일"),
    ("Morning or evening shifts, including weekends", "오전/오후 교대, 주말 포함"),
    ("6 days a week with 1 rest day on a weekday", "주 6일 근무 (평일 중 1일 휴무)"),
    ("12-hour shifts, 4 days on and 3 days off", "12시간 교대, 4일 근무 3일 휴무"),
]
PART_HOURS: list[Pair] = [
    ("At least 3 shifts a week, 4 to 6 hours each", "주 3회 이상, 1회 4~6시간"),
    ("Weekends only", "주말 근무"),
    ("Weekday evenings, 5pm to 10pm", "평일 저녁 17:00~22:00"),
]
BENEFITS: list[Pair] = [
    ("14 days of annual leave, rising with service", "연차 14일 (근속 연수에 따라 증가)"),
    ("AWS (13th-month bonus)", "13개월차 보너스(AWS)"),
    ("Performance bonus", "성과급"),
    ("Medical and dental insurance", "의료 및 치과 보험"),
    ("Employment Pass sponsorship for the right candidate", "적격자 EP(취업비자) 지원"),
    ("CPF contributions for Singaporeans and PRs", "싱가포르 시민권자·영주권자 CPF 적립"),
    ("Transport allowance", "교통비 지원"),
    ("Meal allowance", "식대 지원"),
    ("Training budget of SGD 1,500 a year", "연 SGD 1,500 교육비 지원"),
    ("Birthday leave", "생일 휴가"),
    ("Team dinners and an annual company trip", "회식 및 연 1회 워크숍"),
    ("Korean-speaking team", "한국어로 소통하는 팀 분위기"),
]
PART_BENEFITS: list[Pair] = [
    ("Flexible roster", "유연한 근무 스케줄"),
    ("Paid training", "유급 교육"),
    ("Weekly pay", "주급 지급"),
]

PROCESS: list[Pair] = [
    ("CV screening, then one or two interviews", "서류 전형 → 1~2차 면접 → 최종 합격"),
    ("CV screening, a skills test and a final interview", "서류 전형 → 실무 과제 → 최종 면접"),
    ("A short phone call, then a trial shift", "전화 인터뷰 → 현장 실습 근무"),
]


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


def draw_pay(rng: random.Random, role: Role, level: str, employment: str) -> dict:
    """Salary in one of the forms real postings use; 'form' says which."""
    factor = LEVELS[level][0]
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


def draw(rng: random.Random, ko: bool, index: int) -> Draw:
    ind = rng.choice(INDUSTRIES)
    role = rng.choice(ind.roles)
    level = rng.choice(role.levels)
    if level == "intern":
        employment = "intern"
    elif role.hourly and rng.random() < 0.5:
        employment = "part"
    else:
        employment = rng.choices(["full", "contract", "temp"], [0.8, 0.15, 0.05])[0]
    company = rng.choice(ind.companies)
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
        pay=draw_pay(rng, role, level, employment),
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
        url=f"https://{rng.choice(['careers.', 'www.', ''])}{domain}/{rng.choice(['jobs', 'careers', 'apply'])}/{1000 + index}",
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
            f"{company}{josa(company, '은/는')} 싱가포르 {area}에 위치한 {d.ind.desc[1]} 기업으로, {mission}.",
            f"당사는 {mission}. 싱가포르 {area}에 사무실을 두고 현지 직원과 한국인 직원이 함께 일하고 있습니다.",
            f"{company}{josa(company, '은/는')} {rng.randint(2005, 2021)}년 설립 이후 {mission}.",
            f"저희 {company}{josa(company, '은/는')} {mission}. 빠르게 성장하는 팀에서 함께할 동료를 찾고 있습니다.",
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
            f"At {company}, {mission}. Our team of {rng.choice([15, 40, 80, 150, 400])} people works from {area}.",
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


HEADINGS = {
    "about": (["About us", "Who we are", "About the company"], ["회사 소개", "기업 소개", "우리 회사는요"]),
    "duties": (
        ["What you'll do", "Responsibilities", "The role", "Key duties"],
        ["주요 업무", "담당 업무", "이런 일을 합니다"],
    ),
    "reqs": (
        ["What we're looking for", "Requirements", "You have"],
        ["자격 요건", "필수 요건", "이런 분을 찾습니다"],
    ),
    "nice": (
        ["Nice to have", "Bonus points", "Preferred"],
        ["우대 사항", "이런 분이면 더 좋아요", "우대 조건"],
    ),
    "skills": (["Skills", "Tech and tools"], ["필요 기술", "사용 기술 및 툴"]),
    "terms": (["Terms", "Working conditions", "The details"], ["근무 조건", "근무 환경", "채용 조건"]),
    "benefits": (["What we offer", "Benefits", "Perks"], ["복리후생", "혜택 및 복지", "이런 혜택을 드려요"]),
    "apply": (["How to apply", "Apply", "Interested?"], ["지원 방법", "지원 안내", "접수 방법"]),
}


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
                f"국문 또는 영문 이력서를 {d.email}로 보내 주세요. 메일 제목에 '{title} 지원'이라고 적어 주세요."
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


def posting(rng: random.Random, index: int) -> dict:
    d = draw(rng, rng.random() < KO_SHARE, index)
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
        "id": f"sg-{index:05d}",
        "title": title,
        "content": content,
        "created_at": d.created,
        "meta": meta,
    }
    if rng.random() < 0.03:
        del record["meta"]
    return record


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
