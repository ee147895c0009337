"""Seed 004's job table (section 2), copied as written: (job id, name, Spring cron or None if manual)."""

SEED_JOBS = [
    ("trading-portfolio-generator", "트레이딩 포트폴리오 생성", "0 0 9 * * *"),
    ("short-term-strategy-executor", "단기 전략 실행", "0 0 * * * *"),
    ("medium-term-strategy-executor", "중기 전략 실행", "0 0 9 * * *"),
    ("long-term-strategy-executor", "장기 전략 실행", "0 0 9 * * MON"),
    ("krx-daily-collector", "KRX 일별 시세 수집", "0 0 16 * * *"),
    ("us-daily-collector", "US 시장 일별 시세 수집", "0 0 17 * * *"),
    ("krx-daily-backfill", "KRX 일별 시세 백필", None),
    ("us-daily-backfill", "US 일별 시세 백필", None),
    ("factor-calculation", "팩터 계산", "0 0 8 * * *"),
    ("auto-buy", "자동매수(통합)", "0 10 9 * * *"),
    ("pipeline-execution", "파이프라인 실행", None),
    ("pipeline-exit", "파이프라인 청산 평가", "0 */5 9-15 * * MON-FRI"),
    ("fill-confirmation", "체결 확인 후 포지션 등록", "0 * * * * *"),
    ("unfilled-order-check", "미체결 확인", "0 * * * * *"),
    ("risk-event-alert", "리스크 이벤트 알림", "0 */10 9-15 * * MON-FRI"),
    ("medium-term-rebalance", "중기 리밸런스", "0 30 8 1 * *"),
    ("daily-pnl", "일일 PnL 기록", "0 5 16 * * MON-FRI"),
    ("intraday-breakout", "장중 변동성 돌파", "0 10,40 9 * * MON-FRI"),
    ("robo-rebalance", "로보 리밸런싱", None),
    ("strategy-governance-check", "전략 거버넌스 검사", "0 0 2 1 * *"),
]
