"""The app's pages, one module per page (the admin pages share one); each has ``render``-style
functions that ``review_ui/app.py`` registers for the roles that may use them."""
