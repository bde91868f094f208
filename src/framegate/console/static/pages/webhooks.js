// The webhooks page.
