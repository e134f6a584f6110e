"""compressors.text.code: code blocks to one line, markdown marks dropped (real-looking inputs)."""

from compressors.text.code import MAX_GIST_CHARS, code_gist, split_code_blocks, strip_markdown

FLASK = '''from flask import Flask, request, jsonify
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///budget.db"
db = SQLAlchemy(app)

class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)

@app.route("/register", methods=["POST"])
def register():
    data = request.get_json()
    username = data.get('username')
    return jsonify({"message": "ok"}), 201

if __name__ == "__main__":
    app.run(debug=True)
'''


def test_python_gist_names_imports_definitions_settings_and_the_run():
    gist = code_gist(FLASK, "python")
    assert gist == (
        "code (python): imports flask (Flask, request, jsonify), flask_sqlalchemy (SQLAlchemy); "
        'defines class User, register() (app.route /register); sets SQLALCHEMY_DATABASE_URI="sqlite:///budget.db"; '
        "runs app.run(debug=True)"
    )


def test_variables_inside_functions_are_not_settings():
    gist = code_gist("def f(data):\n    name = data.name\n    retries = 3\n", "python")
    assert "name=" not in gist and "retries=3" in gist


def test_config_gist_keeps_keys_values_and_versions():
    compose = "version: '3.8'\nservices:\n  db:\n    image: postgres:15.2\n    ports:\n      - \"5432:5432\"\n    restart: always\n"
    gist = code_gist(compose, "yaml")
    assert gist.startswith("code (yaml): sets ")
    assert "version='3.8'" in gist and "image=postgres:15.2" in gist and "restart=always" in gist
    assert "services" not in gist  # a key with no value of its own
    assert code_gist("Flask==2.3.1\nJinja2>=3.1.2\nrequests\n") == "code: sets Flask 2.3.1, Jinja2 >=3.1.2"
    assert code_gist('{\n  "name": "budget-app",\n  "port": 8080,\n  "debug": false\n}', "json") == (
        'code (json): sets name="budget-app", port=8080, debug=false'
    )


def test_shell_gist_lists_commands_without_prompts_or_comments():
    gist = code_gist("$ python -m venv .venv  # once\n$ pip install flask==2.3.1\n# then\nflask run --port 5000\n", "bash")
    assert gist == "code (bash): runs python -m venv .venv, pip install flask==2.3.1, flask run --port 5000"


def test_javascript_and_sql_and_dockerfile():
    js = "import express from 'express';\nconst PORT = 3000;\nexport async function start() {\n  app.listen(PORT);\n}\n"
    assert code_gist(js, "js") == "code (js): imports express; defines start(); sets PORT=3000"
    sql = "CREATE TABLE IF NOT EXISTS expenses (\n  id INTEGER PRIMARY KEY,\n  amount REAL\n);"
    assert code_gist(sql, "sql") == "code (sql): defines table expenses"
    docker = "FROM python:3.11-slim\nENV PORT=8000\nRUN pip install -r requirements.txt\nCMD [\"gunicorn\", \"app:app\"]\n"
    gist = code_gist(docker, "dockerfile")
    assert "image python:3.11-slim" in gist and "PORT=8000" in gist and "pip install -r requirements.txt" in gist


def test_unrecognised_block_says_its_language_and_size():
    assert code_gist("<div>\n  <p>Hello</p>\n</div>\n", "html") == "code (html, 3 lines)"
    assert code_gist("", "") == "code (0 lines)"


def test_gist_is_bounded():
    many = "\n".join(f"def function_number_{i}():\n    pass" for i in range(500))
    gist = code_gist(many, "python")
    assert len(gist) <= MAX_GIST_CHARS and gist.count("()") <= 8


def test_split_code_blocks_keeps_order_and_handles_an_open_fence():
    text = "First I tried:\n```bash\npip install numpy==1.26\n```\nThen this:\n```\nimport os\n"
    segments = split_code_blocks(text)
    assert [s.code for s in segments] == [False, True, False, True]
    assert segments[0].text.strip() == "First I tried:"
    assert segments[1].text == "code (bash): runs pip install numpy==1.26"
    assert segments[3].text == "code: imports os"
    assert split_code_blocks("no code here") and split_code_blocks("no code here")[0].code is False
    assert split_code_blocks("   ") == []


def test_strip_markdown():
    text = (
        "## Step 1: Setup\n**Task 1:** install *Flask* and `flask-login`\n> quoted note\n---\n"
        "| tool | version |\n|---|---|\n| Flask | 2.3.1 |\nSee [the docs](https://flask.palletsprojects.com)."
    )
    assert strip_markdown(text).splitlines() == [
        "Step 1: Setup",
        "Task 1: install Flask and flask-login",
        "quoted note",
        "",
        "tool; version",
        "",
        "Flask; 2.3.1",
        "See the docs (https://flask.palletsprojects.com).",
    ]
    # identifiers with underscores and arithmetic stars are not emphasis
    assert strip_markdown("set max_retries and 2 * 3 * 4") == "set max_retries and 2 * 3 * 4"
