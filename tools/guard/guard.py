"""make guard: the AWS Control Tower guard rules, run by cfn-guard over
template.yaml as CloudFormation receives it (after the SAM transform).

    python3 tools/guard/guard.py template.yaml SECURITY.md

cfn-guard and the rules come from the pinned npm package in this folder
(npm ci). A control that fails passes the check only when SECURITY.md's
table of justified controls has a row for it, "| CT.<SERVICE>.PR.<n> | ... |";
a row for a control that no longer fails fails the check too, so that the
table stays true. Exit status: 0 clean, 1 findings, 2 could not run.
"""

import json
import os
import platform
import re
import subprocess
import sys
import tempfile

from samtranslator.parser.parser import Parser
from samtranslator.public.translator import Translator
from samtranslator.yaml_helper import yaml_parse

PACKAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node_modules", "@cdklabs", "cdk-validator-cfnguard")
CONTROL = re.compile(r"\[(CT\.[A-Z0-9]+\.PR\.\d+)\]: ([^\n]*)")


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(2)


def transformed(path):
    """The template after the SAM transform, as sam deploy sends it."""
    with open(path) as f:
        tpl = yaml_parse(f.read())
    # sam build replaces the local CodeUri with the uploaded package.
    for props in [tpl.get("Globals", {}).get("Function", {})] + [
        r.get("Properties", {}) for r in tpl["Resources"].values() if r.get("Type") == "AWS::Serverless::Function"
    ]:
        if "CodeUri" in props:
            props["CodeUri"] = "s3://sam-artifacts/bootstrap.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return Translator(managed_policy_map={}, sam_parser=Parser()).translate(sam_template=tpl, parameter_values={})


def cfn_guard():
    system = {"Linux": "ubuntu", "Darwin": "macos"}.get(platform.system())
    machine = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(platform.machine().lower())
    path = os.path.join(PACKAGE, "bin", system or "?", machine or "?", "cfn-guard")
    if not os.path.exists(path):
        fail(f"guard: no cfn-guard for {platform.system()} {platform.machine()} in {PACKAGE}/bin (run npm ci in tools/guard)")
    return path


def findings(report, out, control=None):
    """Adds control -> (title, resources) for every failed check in a cfn-guard JSON report."""
    if isinstance(report, dict):
        m = CONTROL.search(str(((report.get("Rule") or {}).get("messages") or {}).get("custom_message") or ""))
        if m:
            control = m.groups()
        path = report.get("path") or (report.get("traversed_to") or {}).get("path")
        if control and isinstance(path, str) and path.startswith("/Resources/"):
            out.setdefault(control[0], (control[1], set()))[1].add(path.split("/")[2])
        for v in report.values():
            findings(v, out, control)
    elif isinstance(report, list):
        for v in report:
            findings(v, out, control)
    return out


def main(template, security_md):
    guard = cfn_guard()
    rules = os.path.join(PACKAGE, "rules", "control-tower", "cfn-guard")
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "template.json")
        with open(data, "w") as f:
            json.dump(transformed(template), f)
        run = subprocess.run([guard, "validate", "-r", rules, "-d", data, "-z", "-o", "json", "-S", "none"],
                             capture_output=True, text=True)
    if run.returncode not in (0, 19):  # 19: some rule failed
        fail(f"guard: cfn-guard exited {run.returncode}: {run.stderr.strip()}")
    found = findings(json.loads(run.stdout or "[]"), {})
    with open(security_md) as f:
        justified = set(re.findall(r"^\| (CT\.[A-Z0-9]+\.PR\.\d+) \|", f.read(), re.M))
    version = subprocess.run([guard, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"guard: {version}, AWS Control Tower rules, over {template} after the SAM transform")
    bad = 0
    for control, (title, resources) in sorted(found.items()):
        where = ", ".join(sorted(resources))
        if control in justified:
            print(f"guard: justified in {security_md}: {control} {title} ({where})")
        else:
            bad += 1
            print(f"guard: FAIL {control} {title} ({where}): fix the template or justify it in {security_md}")
    for control in sorted(justified - found.keys()):
        bad += 1
        print(f"guard: FAIL {control} is justified in {security_md} but no longer fails: remove its row")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        fail("usage: guard.py template.yaml SECURITY.md")
    sys.exit(main(sys.argv[1], sys.argv[2]))
