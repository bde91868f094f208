// The models page.
