// The keys page.
