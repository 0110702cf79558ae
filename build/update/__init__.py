"""Updates a fleet can trust: signatures of release files (`signing`) and patches from one
released build to the next (`delta`)."""
