from __future__ import annotations

import pytest
from django.core.management import call_command

from workers_app.models import Annotator, Domain

pytestmark = pytest.mark.django_db


def test_seed_creates_six_domains_and_five_builtin_annotators():
    call_command("seed_defaults")
    assert list(Domain.objects.values_list("slug", flat=True)) == [
        "urgency", "therapeutic", "intensity", "adjunct", "modality", "redressal"]
    assert set(Annotator.objects.values_list("number", "backend")) == {(n, "builtin") for n in range(1, 6)}


def test_seeding_twice_changes_nothing_and_keeps_staff_edits(capsys):
    call_command("seed_defaults")
    domain = Domain.objects.get(slug="urgency")
    domain.prompt_template = "Staff wording for {text}"
    domain.save()
    Annotator.objects.filter(number=1).update(name="GPT via proxy")
    call_command("seed_defaults")
    assert "nothing changed" in capsys.readouterr().out
    assert Domain.objects.get(slug="urgency").prompt_template == "Staff wording for {text}"
    assert Annotator.objects.get(number=1).name == "GPT via proxy"
    assert Domain.objects.count() == 6 and Annotator.objects.count() == 5


def test_every_edit_of_a_prompt_increases_its_version(catalogue):
    domain = Domain.objects.get(slug="intensity")
    assert domain.prompt_version == 1
    domain.prompt_template += "\nBe brief."
    domain.save()
    domain.title = "Care intensity"
    domain.save()
    assert Domain.objects.get(slug="intensity").prompt_version == 2


def test_every_seeded_prompt_asks_for_a_final_marker_and_holds_the_post(catalogue):
    for domain in Domain.objects.all():
        assert "{text}" in domain.prompt_template and "<<" in domain.prompt_template
        domain.full_clean()
