"""The pipeline of one profile: trace -> freeze (backends/) -> links -> UPX -> budget -> smoke test ->
image -> manifest -> reports -> publish into dist/. `orchestrate.build_profile` runs it."""
