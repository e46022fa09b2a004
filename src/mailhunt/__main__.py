from mailhunt.cli import app

app(prog_name="mailhunt")
