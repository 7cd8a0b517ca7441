"""Raw intervention-annotated teleoperation logs -> RLIF-relabeled RLDS rounds."""
