// The playground page.
