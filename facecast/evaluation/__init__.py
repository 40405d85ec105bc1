"""Quality checks users can run on their own inputs: re-tracking rendered frames (`retrack`) and
the lip-sync evaluation against phoneme timing: `metrics` (the scores, pure numbers), `lipsync`
(generate -> render through an `Animator` -> re-track -> score; the test sentences) and `cli`
(`facecast eval lipsync`). Dependencies run one way: cli -> lipsync -> metrics, retrack.
"""
