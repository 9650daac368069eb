"""The flow's bar moves at every step of every batch (it used to move when a whole shard ended)."""

import logging


def test_a_shard_s_steps_move_the_flow_s_bar_in_this_process():
    from mils.engine.progress import advance, shared_bar
    from tasks.benchmark import StepLog

    class Bar:
        n = 0

        def update(self, k):
            self.n += k

    bar = Bar()
    with shared_bar("/runs/a", bar):
        log = StepLog(logging.getLogger("t"), 3, "s0", "/runs/a")
        for _ in range(3):
            log.update(2)  # a batch of 2 samples finished a step
        StepLog(logging.getLogger("t"), 3, "s0", "/runs/other").update(5)  # another run's bar is not this one
    advance("/runs/a", 4)  # after the run: nothing registered, nothing moves
    assert bar.n == 6
