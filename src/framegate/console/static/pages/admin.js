// The admin page.
