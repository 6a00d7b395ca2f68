"""The console's own interface text in Chinese (sqladmin ships no Chinese catalogue)."""

from typing import Any

from jinja2 import Environment
from starlette.datastructures import FormData

UI_TEXT: dict[str, str] = {
    "List": "列表",
    "Details": "详情",
    "Create": "新建",
    "Edit": "编辑",
    "Delete": "删除",
    "Export": "导出",
    "Import": "导入",
    "New %(name)s": "新建%(name)s",
    "Cancel": "取消",
    "Save": "保存",
    "Save and continue editing": "保存并继续编辑",
    "Save and add another": "保存并再建一条",
    "Save as new": "另存为新记录",
    "Column": "字段",
    "Value": "内容",
    "Go Back": "返回",
    "Edit %(name)s": "编辑%(name)s",
    "Logout": "退出登录",
    "Language": "语言",
    "Import CSV": "导入 CSV",
    "You are not authorized to view these records.": "您没有权限查看这些记录。",
    "Actions": "批量操作",
    "Delete selected items": "删除选中的记录",
    "Search": "搜索",
    "Select all": "全选",
    "Select item": "选择",
    "View": "查看",
    "Showing %(start)s to %(end)s of %(count)s items": "第 %(start)s-%(end)s 条，共 %(count)s 条",
    "prev": "上一页",
    "next": "下一页",
    "Show": "每页",
    "%(size)s / Page": "%(size)s 条/页",
    "Filters": "筛选",
    "Login to %(title)s": "登录%(title)s",
    "Username": "用户名",
    "Enter username": "请输入用户名",
    "Password": "密码",
    "Login": "登录",
    "Close": "关闭",
    "Done": "完成",
    "Clear filter": "清除筛选",
    "Apply Filter": "筛选",
    "Please confirm": "请确认",
    "Yes": "确定",
    "Refresh list": "刷新列表",
}

# sqladmin decides where to go after saving by the English label of the button pressed.
_BUTTON_ENGLISH = {
    chinese: english for english, chinese in UI_TEXT.items() if english.startswith("Save")
}


def zh_gettext(message: str) -> str:
    """The Chinese text for an interface message (the message itself when untranslated)."""
    return UI_TEXT.get(message, message)


def zh_ngettext(singular: str, plural: str, n: int) -> str:
    """Chinese has no plural forms."""
    return zh_gettext(singular if n == 1 else plural)


def install_chinese(env: Environment) -> None:
    """Make the templates' `_()` calls speak Chinese."""
    install: Any = env.install_gettext_callables  # type: ignore[attr-defined]
    install(zh_gettext, zh_ngettext, newstyle=True)


def with_english_save_button(form: FormData) -> FormData:
    """The submitted form with the pressed save button named as sqladmin expects."""
    pressed = form.get("save")
    if not isinstance(pressed, str) or pressed not in _BUTTON_ENGLISH:
        return form
    items = [(k, _BUTTON_ENGLISH[pressed] if k == "save" else v) for k, v in form.multi_items()]
    return FormData(items)
