"""What people read: the dry-run preview, the calendar (HTML and ICS) and the report (its model
and its DOCX, Markdown, HTML and JSON writers)."""
