"""Install a built profile into a device root: plan (what to write), device (slots, the atomic
`current` link, verification), install (flash, rollback, verify) and the command."""
