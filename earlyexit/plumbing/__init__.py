"""Plumbing shared by earlyexit, analysis and difficulty, kept apart from the science modules:
atomic file writes (`files`), per-rule logging and one-line errors (`logs`), seeds and devices
(`torch_setup`), config checks (`config_check`, `preflight`) and where every artifact lives (`paths`)."""
