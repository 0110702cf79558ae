"""Questions about a build, answered from its import graph and report: what it bundles but never
loads (`suggest`) and why a module is in it (`why`)."""
