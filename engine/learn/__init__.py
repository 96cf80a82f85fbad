"""Learning: policies, batched rollouts, advantages, the meta-learning math and the learner skeleton.

Nothing here touches files or the process: it is called by ``gameadapt.train`` and ``gameadapt.ship``.
"""
