"""Quality checks users can run on their own inputs: re-tracking rendered frames (`retrack`) and
the lip-sync evaluation against phoneme timing (`lipsync`, `facecast eval lipsync`).
"""
