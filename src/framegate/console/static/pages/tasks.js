// The tasks page.
