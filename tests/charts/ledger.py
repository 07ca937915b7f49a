"""A small Excel-style budget-vs-actual export with hand-computed results, shared by the chart and pack tests.

Reference profit: revenue 2,500 − costs 1,250 = 1,250. Actual profit: 2,800 − 1,350 = 1,450. Effect on profit
+200 = Subscription +400, Events −150, Salaries +100, Services −100, Commissions −30, Cloud −20 (Rent 0).
By month: Jan +100, Feb +100.
"""

from __future__ import annotations

from pathlib import Path

from analyst.dataset import Dataset
from analyst.ingest import load_dataset

EVENTS = 'Events $5^2_x & $promo'  # dollar signs that mathtext would choke on
LEDGER_CSV = f"""Month,Department,Account,Account Type,Budget,Actual
2025-01,Sales,Subscription revenue,Revenue,"$1,000.00","$1,300.00"
2025-01,Sales,Services revenue,Revenue,$500.00,$400.00
2025-01,Sales,Commissions,Expense,$100.00,$130.00
2025-01,Marketing,"{EVENTS.replace('"', '""')}",Expense,$200.00,$350.00
2025-01,Engineering,Salaries,Expense,$800.00,$700.00
2025-01,Engineering,Cloud hosting,Expense,$100.00,$120.00
2025-01,G&A,Rent,Expense,$50.00,$50.00
2025-02,Sales,Subscription revenue,Revenue,"$1,000.00","$1,100.00"
"""

# Costs only (a city department's budget file): the bridge is of total costs, IT under budget is favourable.
COSTS_CSV = """Account,Budget,Actual
Facilities costs,"10,000","12,500"
IT expenses,"20,000","18,000"
Travel,"5,000","5,600"
Community grants expense,"1,000","1,000"
"""


def load_csv(tmp_path: Path, text: str, name: str = "ledger.csv") -> Dataset:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_dataset(str(path), filename=name)


def load_ledger(tmp_path: Path) -> Dataset:
    return load_csv(tmp_path, LEDGER_CSV)
