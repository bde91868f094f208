from framegate.cli.main import app

app()
