// The usage page.
