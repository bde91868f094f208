// The overview page.
