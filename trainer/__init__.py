"""RLPD (SAC with a critic ensemble) on TF-Agents, trained on RLIF-relabeled RLDS rounds."""
