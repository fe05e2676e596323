"""Generate the example project's seed files: payments with fraud labels, deterministic for a given seed.

The data has what real event data has: late events (ingested days after they happened), exact duplicates
re-sent by a client, bursts of fraud at a few merchants, and users who sign up over time.

    python example_project/scripts/generate_data.py            # writes example_project/data/*.parquet
"""

from __future__ import annotations

import argparse
import random
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

START = datetime(2026, 1, 1)
DAYS = 180
COUNTRIES = ["DE", "FR", "GB", "US", "NL", "ES", "IT", "PL"]
CATEGORIES = ["grocery", "electronics", "travel", "fashion", "gaming", "pharmacy"]
CHANNELS = ["web", "app", "pos"]


def generate(seed: int = 7, users: int = 2000, merchants: int = 150, transactions: int = 40000) -> dict[str, pa.Table]:
    rng = random.Random(seed)
    user_rows = []
    for user_id in range(1, users + 1):
        signup = START - timedelta(days=rng.randint(0, 720), seconds=rng.randint(0, 86399))
        user_rows.append({
            "user_id": user_id,
            "country": rng.choice(COUNTRIES),
            "signup_ts": signup,
            "updated_ts": signup + timedelta(days=rng.randint(0, 30)),
        })
    merchant_rows = []
    risky = set(rng.sample(range(1, merchants + 1), k=max(1, merchants // 15)))
    for merchant_id in range(1, merchants + 1):
        merchant_rows.append({
            "merchant_id": merchant_id,
            "category": rng.choice(CATEGORIES),
            "onboarded_ts": START - timedelta(days=rng.randint(30, 900)),
        })
    txn_rows = []
    chargeback_rows = []
    active_users = [u["user_id"] for u in user_rows]
    weights = [rng.paretovariate(1.5) for _ in active_users]
    for txn_id in range(1, transactions + 1):
        user_id = rng.choices(active_users, weights)[0]
        merchant_id = rng.randint(1, merchants)
        event_ts = START + timedelta(seconds=rng.randint(0, DAYS * 86400 - 1))
        fraud_p = 0.08 if merchant_id in risky else 0.006
        is_fraud = rng.random() < fraud_p
        amount = round(rng.lognormvariate(3.2, 1.0) * (3.0 if is_fraud else 1.0), 2)
        delay = timedelta(seconds=rng.randint(1, 120))
        if rng.random() < 0.03:  # late: arrives one to five days after it happened
            delay = timedelta(days=rng.randint(1, 5), seconds=rng.randint(0, 86399))
        row = {
            "txn_id": txn_id,
            "user_id": user_id,
            "merchant_id": merchant_id,
            "amount": amount,
            "channel": rng.choice(CHANNELS),
            "event_ts": event_ts,
            "created_ts": event_ts + delay,
            "is_fraud": is_fraud,
        }
        txn_rows.append(row)
        if rng.random() < 0.01:  # the client re-sent it: same event, ingested again later
            txn_rows.append({**row, "created_ts": row["created_ts"] + timedelta(minutes=rng.randint(1, 600))})
        if is_fraud and rng.random() < 0.7:
            chargeback_rows.append({
                "txn_id": txn_id,
                "user_id": user_id,
                "merchant_id": merchant_id,
                "event_ts": event_ts + timedelta(days=rng.randint(3, 45)),
                "amount": amount,
            })
    txn_rows.sort(key=lambda r: r["created_ts"])
    chargeback_rows.sort(key=lambda r: r["event_ts"])
    return {
        "users": pa.Table.from_pylist(user_rows),
        "merchants": pa.Table.from_pylist(merchant_rows),
        "transactions": pa.Table.from_pylist(txn_rows),
        "chargebacks": pa.Table.from_pylist(chargeback_rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "data")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--transactions", type=int, default=40000)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, table in generate(args.seed, transactions=args.transactions).items():
        pq.write_table(table, args.out / f"{name}.parquet", compression="zstd")
        print(f"{name}: {table.num_rows} rows")


if __name__ == "__main__":
    main()
