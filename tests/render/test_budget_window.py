"""The rolling-window seam: a budget's windows are counted by whatever ``window_factory`` makes.

Two processes sharing a workspace's budget would share their windows (Redis); here two :class:`SlackBudget`
instances share one in-memory window per (workspace, method) through a factory, which is the same swap.
"""

from __future__ import annotations

from bot.render import BudgetLimit, InProcessWindow, SlackBudget
from tests.render.virtual_time import VirtualTime


async def test_two_budgets_sharing_windows_stay_within_one_limit() -> None:
    vt = VirtualTime()
    shared: dict[tuple[str, str], InProcessWindow] = {}

    def shared_window(team_id: str, method: str, limit: BudgetLimit) -> InProcessWindow:
        return shared.setdefault((team_id, method), InProcessWindow(team_id, method, limit))

    budgets = [
        SlackBudget(
            limits={"chat.update": BudgetLimit(10, 60.0)},
            min_interval=0.0,
            clock=vt.clock,
            sleep=vt.sleep,
            window_factory=shared_window,
        )
        for _ in range(2)
    ]
    sent: list[float] = []

    async def send(_payload: object) -> None:
        sent.append(vt.now)

    async def main() -> None:
        finals = []
        for b, budget in enumerate(budgets):
            sched = budget.scheduler("T1", "chat.update")
            for i in range(8):
                slot = sched.open(f"m{b}-{i}", send)
                slot.first_shown()
                finals.append(slot.submit_final(f"final {b}-{i}"))
        for fut in finals:
            await fut
        for budget in budgets:
            await budget.aclose()

    await vt.run(main())
    assert len(sent) == 16
    # However the two budgets interleave, no 60 s window holds more than the shared limit.
    assert max(sum(1 for t in sent if start <= t < start + 60.0) for start in sent) <= 10
    assert sorted(sent)[10] >= 60.0  # the 11th call waited for the window
